"""The three commands from the built image, run as the manifests run them: the image's
numeric user, a read-only root, a tmpfs on /tmp, no capabilities (runc, `e2e/cluster/oci.py`).

The image is what `python -m e2e.cluster.image` built for the current sources; without it these
tests skip. `python -m e2e.cluster.image --check` builds it and runs them on it, never skipping.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from e2e.cluster import image, oci
from harness.ready import free_port, wait_http_ok
from tests.api.httpclient import post_json, request

UID_GID = (10001, 10001)
BATCH = {"items": [{"id": "agent-42", "up": 42, "down": 7}]}


def _unavailable(reason: str) -> None:
    if os.environ.get("OPENCLAW_E2E_IMAGE_REQUIRED"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """The record of the image built for these sources (skips when there is none)."""
    # `python -m e2e.cluster.image --check` names the image it built, whatever was edited since.
    key = image.current_key()
    record = image.read_record(key)
    if record is None:
        _unavailable(
            f"no image built for these sources (key {key}): run python -m e2e.cluster.image"
        )
    if os.geteuid() != 0 or shutil.which(oci.RUNTIME) is None:
        _unavailable(f"running the image needs root and {oci.RUNTIME}")
    assert record is not None
    return record


@pytest.fixture(scope="module")
def config(built: dict[str, Any]) -> oci.ImageConfig:
    return oci.read_image_config(Path(built["layout"]), built["layout_tag"])


Bundle = Callable[..., Path]


@pytest.fixture
def bundle(built: dict[str, Any], config: oci.ImageConfig, tmp_path: Path) -> Bundle:
    """A bundle running the given command line (and environment) on the image's rootfs."""

    def make(*args: str, **env: str) -> Path:
        spec = oci.runtime_spec(config, Path(built["rootfs"]), args, env=env)
        return oci.write_bundle(tmp_path / f"bundle-{time.monotonic_ns()}", spec)

    return make


def _name(what: str) -> str:
    return f"openclaw-test-{what}-{os.getpid()}-{time.monotonic_ns()}"


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Callable[..., oci.Container]]:
    started: list[oci.Container] = []

    def start(what: str, bundle: Path, ports: dict[str, int]) -> oci.Container:
        log = tmp_path / f"{what}.log"
        started.append(oci.Container(_name(what), bundle, log, ports).start())
        return started[-1]

    yield start
    for running in started:
        running.stop()


def test_the_layout_holds_the_recorded_image(built: dict[str, Any]) -> None:
    assert oci.manifest_digest(Path(built["layout"]), built["layout_tag"]) == built["digest"]


def test_image_config_is_what_the_manifests_expect(config: oci.ImageConfig) -> None:
    assert config.user == UID_GID
    assert config.cmd == ("rating-api",)
    assert config.entrypoint == ()
    assert any(entry.startswith("PATH=/opt/venv/bin:") for entry in config.env)


def test_root_is_read_only_and_tmp_writable(bundle: Bundle) -> None:
    script = (
        "import os; print(os.getuid(), os.getgid())\n"
        "open('/tmp/probe', 'w').write('ok')\n"
        "open('/opt/venv/probe', 'w')\n"
    )
    result = oci.run_once(bundle("python3", "-c", script), _name("readonly"))
    assert result.stdout.split() == [str(n) for n in UID_GID], result.stdout + result.stderr
    assert "[Errno 30] Read-only file system: '/opt/venv/probe'" in result.stderr, result.stderr
    assert result.returncode == 1


@pytest.mark.parametrize("command", ["rating-api", "rating-scaler", "rating-activator"])
def test_help(bundle: Bundle, command: str) -> None:
    result = oci.run_once(bundle(command, "--help"), _name("help"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith(f"usage: {command} "), result.stdout


def test_rating_api_answers_and_stops_on_sigterm(
    bundle: Bundle, container: Callable[..., oci.Container]
) -> None:
    ports = {"public": free_port(), "admin": free_port()}
    argv = ["rating-api", "--host", "127.0.0.1", "--port", str(ports["public"])]
    argv += ["--admin-port", str(ports["admin"])]
    api = container("rating-api", bundle(*argv, POD_NAME="rating-api-image"), ports)
    wait_http_ok(api.child.url("public", "/readyz"), api.child)
    reply = post_json(api.child.url("public", "/v1/rate"), BATCH)
    assert reply.status == 200, reply.body
    (votes,) = reply.json()["ratings"]
    assert (votes["id"], votes["kind"]) == ("agent-42", "votes")
    assert votes["lower_bound"] == pytest.approx(0.7333, abs=5e-5)
    state = request(api.child.url("admin", "/v1/bucket")).json()
    assert state["pod"] == "rating-api-image"
    assert state["granted_total"] >= 1
    # Python is PID 1 in the container: SIGTERM only stops it if the server handles it.
    assert api.stop() == 0, api.child.log_tail()


def test_rating_scaler_answers_grpc_health(
    bundle: Bundle, container: Callable[..., oci.Container]
) -> None:
    ports = {"grpc": free_port(), "http": free_port()}
    argv = ["rating-scaler", "--host", "127.0.0.1", "--grpc-port", str(ports["grpc"])]
    argv += ["--http-port", str(ports["http"])]
    scaler = container("rating-scaler", bundle(*argv), ports)
    wait_http_ok(scaler.child.url("http", "/healthz"), scaler.child)
    with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
        # The HTTP listener may come up before the gRPC one: wait for a connection.
        grpc.channel_ready_future(channel).result(timeout=60)
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "liveness", "readiness"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
    assert scaler.stop() == 0, scaler.child.log_tail()


def test_rating_activator_answers_and_stops_on_sigterm(
    bundle: Bundle, container: Callable[..., oci.Container]
) -> None:
    """No pod (an empty endpoints file): it serves its admin port and holds nothing."""
    ports = {"public": free_port(), "admin": free_port()}
    argv = ["rating-activator", "--host", "127.0.0.1", "--port", str(ports["public"])]
    argv += ["--admin-port", str(ports["admin"]), "--endpoints-file", "/dev/null"]
    activator = container("rating-activator", bundle(*argv, POD_NAME="activator-image"), ports)
    wait_http_ok(activator.child.url("admin", "/readyz"), activator.child)
    held = request(activator.child.url("admin", "/v1/held")).json()
    assert (held["activator"], held["held"], held["pods_ready"]) == ("activator-image", 0, 0)
    assert activator.stop() == 0, activator.child.log_tail()


# --- without the image: the key and the runtime config ---------------------------


def _tree(root: Path) -> Path:
    for name, text in {
        "Dockerfile": "FROM x\n",
        ".dockerignore": "*\n",
        "pyproject.toml": "[project]\n",
        "README.md": "# r\n",
        "api/app.py": "A = 1\n",
        "scaler/server.py": "S = 1\n",
        "common/flags.py": "F = 1\n",
        "activator/hold.py": "H = 1\n",
        "tests/test_x.py": "T = 1\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


EDITS = {
    "source": ("api/app.py", "A = 2\n", True),
    "new-module": ("scaler/poller.py", "P = 1\n", True),
    "shared-source": ("common/flags.py", "F = 2\n", True),
    "activator-source": ("activator/hold.py", "H = 2\n", True),
    "dockerfile": ("Dockerfile", "FROM y\n", True),
    "readme": ("README.md", "# s\n", True),
    "bytecode": ("api/__pycache__/app.cpython-311.pyc", "x", False),
    "test": ("tests/test_x.py", "T = 2\n", False),
    "outside": ("docs/x.md", "d\n", False),
}


@pytest.mark.parametrize(("path", "text", "changes"), EDITS.values(), ids=EDITS.keys())
def test_the_key_follows_what_the_image_is_built_from(
    tmp_path: Path, path: str, text: str, changes: bool
) -> None:
    root = _tree(tmp_path)
    before = image.image_key(root)
    (root / path).parent.mkdir(parents=True, exist_ok=True)
    (root / path).write_text(text)
    assert (image.image_key(root) != before) is changes


@pytest.mark.parametrize(
    ("user", "expected"),
    [("10001:10001", (10001, 10001)), ("10001", (10001, 10001)), ("0:5", (0, 5))],
    ids=["uid-gid", "uid", "root-uid"],
)
def test_parse_user(user: str, expected: tuple[int, int]) -> None:
    assert oci.parse_user(user) == expected


@pytest.mark.parametrize("user", ["", "app", "10001:app", "-1"])
def test_parse_user_refuses_names(user: str) -> None:
    with pytest.raises(ValueError, match="not numeric"):
        oci.parse_user(user)


def test_runtime_spec_is_the_pods_security_context(tmp_path: Path) -> None:
    config = oci.ImageConfig(UID_GID, ("PATH=/opt/venv/bin:/usr/bin",), ("rating-api",), (), "/")
    spec = oci.runtime_spec(config, tmp_path, ["rating-scaler", "--help"], env={"A": "1"})
    process = spec["process"]
    assert process["args"] == ["rating-scaler", "--help"]
    assert (process["user"]["uid"], process["user"]["gid"]) == UID_GID
    assert process["env"] == ["PATH=/opt/venv/bin:/usr/bin", "A=1"]
    assert process["noNewPrivileges"] is True
    assert all(not caps for caps in process["capabilities"].values())
    assert spec["root"] == {"path": str(tmp_path), "readonly": True}
    tmp = [m for m in spec["mounts"] if m["destination"] == "/tmp"]
    assert [m["type"] for m in tmp] == ["tmpfs"]
    namespaces = {n["type"] for n in spec["linux"]["namespaces"]}
    assert "network" not in namespaces, "the host's loopback: servers bind 127.0.0.1"
    assert {"pid", "mount"} <= namespaces
