"""Start and stop the demo's processes: rating pods, the scaler, Prometheus and `hey`.

Everything binds to 127.0.0.1 on free ports and logs into one directory. `Children`
stops every process it started when its block ends, however it ends: Ctrl-C and
SIGTERM become `Interrupted` (see `interruptible`), so the `finally` clauses run. On
Linux each child is also asked by the kernel to stop if the demo itself dies.
"""

from __future__ import annotations

import ctypes
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 10.0
READY_TIMEOUT_S = 30.0
PR_SET_PDEATHSIG = 1


class Interrupted(BaseException):
    """Ctrl-C or SIGTERM: unwinds like KeyboardInterrupt, and remembers which signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@contextmanager
def interruptible() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM raise `Interrupted`."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    previous = {
        signum: signal.signal(signum, handler) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for signum, action in previous.items():
            signal.signal(signum, action)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A pre-exec hook that makes the kernel send SIGTERM to the child when we die."""
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up now, not in the child

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)

    return hook


@dataclass(frozen=True)
class Child:
    """One started process and its log file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Children:
    """Every process the demo starts; all are stopped when the `with` block ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Child] = []
        self._die_with_parent = _die_with_parent_hook()

    def __enter__(self) -> Children:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_all()

    def spawn(self, name: str, argv: Sequence[str]) -> Child:
        log_path = self.log_dir / f"{name}.log"
        mode = "ab" if any(child.log_path == log_path for child in self.started) else "wb"
        with log_path.open(mode) as log:
            popen = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                preexec_fn=self._die_with_parent,
            )
        child = Child(name, popen, log_path)
        self.started.append(child)
        return child

    def stop_all(self) -> None:
        self.stop(self.started)

    def stop(self, children: Sequence[Child]) -> None:
        """SIGTERM to all at once, newest first; SIGKILL what is still up after the grace.
        Ctrl-C and SIGTERM are ignored meanwhile, so that the stopping is not cut short."""
        ignored = {
            sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for child in reversed(children):
                if child.running():
                    child.popen.terminate()
            deadline = time.monotonic() + STOP_GRACE_S
            for child in reversed(children):
                try:
                    child.popen.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.popen.kill()
                    child.popen.wait()
        finally:
            for sig, action in ignored.items():
                signal.signal(sig, action)

    def still_running(self) -> list[Child]:
        return [child for child in self.started if child.running()]


def wait_http_ok(url: str, child: Child, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll `url` until it answers 2xx; fail with the child's log if it exits first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.running():
            raise SystemExit(
                f"{child.name} exited with {child.popen.returncode}:\n{child.log_tail()}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if 200 <= response.status < 300:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    raise SystemExit(
        f"{child.name} did not answer {url} within {timeout_s:g} s; log: {child.log_path}"
    )


@dataclass(frozen=True)
class Pod:
    name: str
    public_port: int
    admin_port: int
    child: Child

    @property
    def rate_url(self) -> str:
        return f"http://{HOST}:{self.public_port}/v1/rate"

    @property
    def admin_address(self) -> str:
        return f"{HOST}:{self.admin_port}"


def start_pods(
    children: Children, count: int, *, bucket_capacity: float, bucket_rate: float
) -> list[Pod]:
    """`count` rating-api processes, started together and ready when this returns."""
    pods = []
    for index in range(count):
        name = f"rating-api-{index}"
        public_port, admin_port = free_port(), free_port()
        argv = [
            sys.executable,
            "-m",
            "api",
            "--host",
            HOST,
            "--port",
            str(public_port),
            "--admin-port",
            str(admin_port),
            "--pod-name",
            name,
            "--bucket-capacity",
            f"{bucket_capacity:g}",
            "--bucket-rate",
            f"{bucket_rate:g}",
            "--log-level",
            "warning",
        ]
        pods.append(Pod(name, public_port, admin_port, children.spawn(name, argv)))
    for pod in pods:
        wait_http_ok(f"http://{HOST}:{pod.public_port}/readyz", pod.child)
        wait_http_ok(f"http://{pod.admin_address}/v1/bucket", pod.child)
    return pods


@dataclass(frozen=True)
class Scaler:
    grpc_port: int
    http_port: int
    child: Child

    @property
    def grpc_address(self) -> str:
        return f"{HOST}:{self.grpc_port}"


def start_scaler(children: Children, *, poll_interval_s: float = 1.0) -> Scaler:
    """The rating-scaler with its defaults, except the loopback address and free ports."""
    grpc_port, http_port = free_port(), free_port()
    argv = [
        sys.executable,
        "-m",
        "scaler",
        "--host",
        HOST,
        "--grpc-port",
        str(grpc_port),
        "--http-port",
        str(http_port),
        "--poll-interval",
        f"{poll_interval_s:g}",
        "--pod-timeout",
        "0.25",
        "--log-level",
        "warning",
    ]
    scaler = Scaler(grpc_port, http_port, children.spawn("rating-scaler", argv))
    wait_http_ok(f"http://{HOST}:{http_port}/healthz", scaler.child)
    return scaler


@dataclass(frozen=True)
class Prometheus:
    port: int
    scrape_interval_s: float
    child: Child

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"


def prometheus_config(targets: Sequence[str], scrape_interval_s: float) -> str:
    """The scrape configuration, as JSON (which is YAML too)."""
    interval_ms = round(scrape_interval_s * 1000)
    config = {
        "global": {
            "scrape_interval": f"{interval_ms}ms",
            "scrape_timeout": f"{min(interval_ms, 5000)}ms",
        },
        "scrape_configs": [
            {"job_name": "rating-api", "static_configs": [{"targets": list(targets)}]}
        ],
    }
    return json.dumps(config, indent=2)


def start_prometheus(
    children: Children,
    binary: str,
    *,
    targets: Sequence[str],
    scrape_interval_s: float,
    work_dir: Path,
) -> Prometheus:
    """A real Prometheus scraping `targets`; its config and TSDB live in `work_dir`."""
    config_path = work_dir / "prometheus.yml"
    config_path.write_text(prometheus_config(targets, scrape_interval_s))
    port = free_port()
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={work_dir / 'tsdb'}",
        f"--web.listen-address={HOST}:{port}",
        "--log.level=warn",
    ]
    prometheus = Prometheus(port, scrape_interval_s, children.spawn("prometheus", argv))
    wait_http_ok(f"{prometheus.url}/-/ready", prometheus.child)
    return prometheus
