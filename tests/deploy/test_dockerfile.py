"""The Dockerfile, checked without a Docker engine: hadolint, and the properties
the deployment relies on (pinned slim base of the tested Python, two stages with
only the venv carried over, a numeric non-root user, no secrets)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.kube import (
    BASE,
    ROOT,
    ZERO,
    container_ports,
    pod_spec,
    render,
    venv_tool,
    workloads,
)

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SECRET_WORDS = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|PRIVATE_?KEY|CREDENTIAL", re.I)
SECRET_FILES = re.compile(r"(^|/)(\.env|\.netrc|\.pypirc|\.npmrc|id_rsa|id_ed25519)$|\.(pem|key)$")


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for key, args in self.instructions if key == keyword]


def parse(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages of a Dockerfile (continuations joined)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in joined.splitlines():
        if not line.strip():
            continue
        keyword, _, args = line.strip().partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: global_args.get(m[1], m[0]), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image, name))
        elif not stages and keyword == "ARG":
            key, _, value = args.partition("=")
            global_args[key] = value
        elif stages:
            stages[-1].instructions.append((keyword, args))
    return global_args, stages


def _base_problems(stages: list[Stage], python: str) -> list[str]:
    problems = []
    for stage in stages:
        if stage.image in {s.name for s in stages}:
            continue
        repository, _, tag = stage.image.partition("@")[0].partition(":")
        pinned = "@sha256:" in stage.image or re.fullmatch(r"\d+\.\d+\.\d+-slim\S*", tag)
        if not pinned:
            problems.append(f"base image not pinned to a release: {stage.image}")
        if repository.rsplit("/", 1)[-1] != "python" or "slim" not in tag:
            problems.append(f"not a slim Python base: {stage.image}")
        elif not tag.startswith(python):
            problems.append(f"base image is not Python {python}: {stage.image}")
    return problems


def _final_stage_problems(stages: list[Stage]) -> list[str]:
    final = stages[-1]
    problems = []
    if any(key in ("RUN", "ADD") for key, _ in final.instructions):
        problems.append("the final stage runs commands or ADDs files")
    for args in final.all("COPY"):
        source = re.match(r"--from=(\S+)\s+(\S+)\s+(\S+)$", args)
        if not source or source[2] != "/opt/venv":
            problems.append(f"the final stage copies more than the venv: COPY {args}")
    users = final.all("USER")
    match = re.fullmatch(r"(\d+)(?::(\d+))?", users[-1]) if users else None
    if not match or int(match[1]) == 0 or (match[2] is not None and int(match[2]) == 0):
        problems.append(f"the final USER is not a numeric non-root uid:gid: {users}")
    if final.all("CMD") != ['["rating-api"]']:
        problems.append(f"the default command is not rating-api: {final.all('CMD')}")
    return problems


def _secret_problems(global_args: dict[str, str], stages: list[Stage]) -> list[str]:
    problems = [f"secret-like ARG {key}" for key in global_args if SECRET_WORDS.search(key)]
    for stage in stages:
        for keyword, args in stage.instructions:
            if keyword in ("ENV", "ARG"):
                for key in re.findall(r"(?:^|\s)([A-Za-z_]\w*)(?==|\s|$)", args):
                    if SECRET_WORDS.search(key):
                        problems.append(f"secret-like {keyword} {key}")
            if keyword in ("COPY", "ADD"):
                for word in args.split():
                    if not word.startswith("--") and SECRET_FILES.search(word):
                        problems.append(f"copies a secret file: {word}")
    return problems


def problems(text: str, python: str) -> list[str]:
    """What is wrong with a Dockerfile, by this project's rules; empty when all is well."""
    global_args, stages = parse(text)
    if len(stages) < 2:
        return ["not a multi-stage build"]
    return [
        *_base_problems(stages, python),
        *_final_stage_problems(stages),
        *_secret_problems(global_args, stages),
    ]


PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}."


def test_dockerfile_has_the_properties_the_deployment_relies_on() -> None:
    assert problems(DOCKERFILE.read_text(), PYTHON) == []


def _replace(old: str, new: str) -> str:
    text = DOCKERFILE.read_text()
    assert old in text, old
    return text.replace(old, new)


BAD_DOCKERFILES = {
    "single-stage": (
        'FROM python:3.11.7-slim-bookworm\nUSER 10001\nCMD ["rating-api"]\n',
        "not a multi-stage build",
    ),
    "floating-tag": (_replace("3.11.7-slim-bookworm", "3.11-slim"), "not pinned"),
    "other-python": (_replace("python:3.11.7-slim", "python:3.10.13-slim"), "is not Python"),
    "root-user": (_replace("USER 10001:10001", "USER root"), "numeric non-root"),
    "uid-zero": (_replace("USER 10001:10001", "USER 0:0"), "numeric non-root"),
    "source-in-final-stage": (
        _replace("COPY --from=build /opt/venv /opt/venv", "COPY --from=build /src /src"),
        "more than the venv",
    ),
    "install-in-final-stage": (
        _replace("USER 10001:10001", "RUN pip install .\nUSER 10001:10001"),
        "runs commands",
    ),
    "secret-in-env": (
        _replace("PYTHONUNBUFFERED=1", "PYTHONUNBUFFERED=1 \\\n    PYPI_TOKEN=abc"),
        "secret-like ENV PYPI_TOKEN",
    ),
    "secret-file": (_replace("COPY api ./api", "COPY api ./api\nCOPY .pypirc /root/"), ".pypirc"),
}


@pytest.mark.parametrize(("text", "expected"), BAD_DOCKERFILES.values(), ids=BAD_DOCKERFILES.keys())
def test_property_check_rejects_bad_dockerfiles(text: str, expected: str) -> None:
    found = problems(text, PYTHON)
    assert any(expected in problem for problem in found), found


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv_tool("hadolint")), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_hadolint_passes() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_sloppy_dockerfile(tmp_path: Path) -> None:
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text(
        "FROM python:latest\nRUN apt-get update && apt-get install -y curl\n"
        "RUN pip install requests\nCMD rating-api\n"
    )
    result = hadolint(sloppy)
    assert result.returncode != 0
    for rule in ("DL3007", "DL3008", "DL3013", "DL3025"):
        assert rule in result.stdout, result.stdout


def test_image_user_and_ports_match_the_manifests() -> None:
    _, stages = parse(DOCKERFILE.read_text())
    uid, gid = (int(n) for n in stages[-1].all("USER")[-1].split(":"))
    exposed = {int(port) for args in stages[-1].all("EXPOSE") for port in args.split()}
    for workload in workloads(render(BASE)) + workloads(render(ZERO)):
        context = pod_spec(workload)["securityContext"]
        assert (context["runAsUser"], context["runAsGroup"]) == (uid, gid)
        assert set(container_ports(workload).values()) <= exposed


# --- .dockerignore -------------------------------------------------------------


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match plus `**`) as a regular expression."""
    pattern = pattern.strip().strip("/")
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "$")


def ignored(path: str, lines: list[str]) -> bool:
    """Whether the build context leaves `path` out: the last matching pattern wins,
    and a pattern that matches a parent directory matches everything below it."""
    parents = ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 2)]
    result = False
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        regex = _pattern(line[1:] if negate else line)
        if any(regex.match(parent) for parent in parents):
            result = not negate
    return result


CONTEXT = {
    "pyproject.toml": False,
    "README.md": False,
    "api/__main__.py": False,
    "common/flags.py": False,
    "activator/__main__.py": False,
    "activator/__pycache__/hold.cpython-311.pyc": True,
    "scaler/_proto/__init__.py": False,
    "api/__pycache__/app.cpython-311.pyc": True,
    "scaler/poller.pyc": True,
    ".git/HEAD": True,
    ".venv/bin/python": True,
    "tests/deploy/test_dockerfile.py": True,
    "manifests/base/kustomization.yaml": True,
    ".env": True,
    "out/bench.json": True,
}


@pytest.mark.parametrize(("path", "expected"), CONTEXT.items(), ids=CONTEXT.keys())
def test_dockerignore_sends_only_what_the_build_needs(path: str, expected: bool) -> None:
    assert ignored(path, DOCKERIGNORE.read_text().splitlines()) is expected


def test_everything_the_build_copies_is_in_the_context() -> None:
    _, stages = parse(DOCKERFILE.read_text())
    lines = DOCKERIGNORE.read_text().splitlines()
    for stage in stages:
        for args in stage.all("COPY"):
            if args.startswith("--from="):
                continue
            *sources, _ = args.split()
            for source in sources:
                assert not ignored(source.rstrip("/"), lines), f"{source} is dockerignored"
                assert (ROOT / source).exists(), f"{source} is missing from the repository"


def _build_context(destination: Path) -> None:
    """Copy what `docker build .` would send, by the rules of .dockerignore."""
    lines = DOCKERIGNORE.read_text().splitlines()
    for directory, subdirectories, files in os.walk(ROOT):
        relative = Path(directory).relative_to(ROOT)
        subdirectories[:] = [
            name
            for name in subdirectories
            if not ignored((relative / name).as_posix(), lines)
            or any(line.startswith(f"!{(relative / name).as_posix()}/") for line in lines)
        ]
        for name in files:
            path = (relative / name).as_posix()
            if not ignored(path, lines):
                (destination / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / path, destination / path)


def test_the_build_context_installs_the_three_commands(tmp_path: Path) -> None:
    """What the build stage's `pip install .` gets from the context: build the wheel
    offline (setuptools from this venv) and look inside."""
    context = tmp_path / "context"
    _build_context(context)
    result = subprocess.run(
        [
            sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
            "--no-index", "--quiet", "--wheel-dir", str(tmp_path / "wheels"), str(context),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "wheels").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    assert "rating-api = api.__main__:main" in scripts
    assert "rating-scaler = scaler.__main__:main" in scripts
    assert "rating-activator = activator.__main__:main" in scripts
    modules = {"api/__main__.py", "scaler/__main__.py", "activator/__main__.py"}
    assert modules | {"common/token_file.py", "activator/hold.py"} <= names
    assert [n for n in names if n.startswith("scaler/_proto/") and n.endswith("_pb2.py")]
    assert not [n for n in names if n.startswith("tests/")]
