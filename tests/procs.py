"""Real server processes on loopback, started and stopped by the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http_ok(
    url: str, timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll `url` until it answers 2xx; fail early if `proc` exits."""
    deadline = time.monotonic() + timeout_s
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1.0) as response:
                if 200 <= response.status < 300:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last_error = repr(exc)
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer 2xx within {timeout_s}s: {last_error}")


@dataclass
class Proc:
    """A child process with the ports it was given."""

    name: str
    popen: subprocess.Popen[bytes]
    ports: dict[str, int] = field(default_factory=dict)
    log_path: Path | None = None

    @property
    def pid(self) -> int:
        return self.popen.pid

    def url(self, port_name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[port_name]}{path}"

    def signal(self, signum: int) -> None:
        if self.popen.poll() is None:
            os.kill(self.popen.pid, signum)

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, wait, then SIGKILL if it would not go. Returns the exit code."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return int(self.popen.returncode)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""


def spawn(
    name: str,
    argv: Sequence[str],
    log_dir: Path,
    ports: dict[str, int] | None = None,
    env: dict[str, str] | None = None,
) -> Proc:
    """Start `argv` with stdout and stderr into a log file under `log_dir`."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    with log_path.open("wb") as log_file:
        popen = subprocess.Popen(
            list(argv), stdout=log_file, stderr=subprocess.STDOUT, env=child_env, cwd=ROOT
        )
    return Proc(name=name, popen=popen, ports=dict(ports or {}), log_path=log_path)


def start_rating_api(
    log_dir: Path,
    *args: str,
    name: str = "rating-api",
    port: int | None = None,
    admin_port: int | None = None,
    env: dict[str, str] | None = None,
) -> Proc:
    """A real `rating-api` process on loopback, ready when this returns."""
    ports = {"public": port or free_port(), "admin": admin_port or free_port()}
    argv = [
        sys.executable, "-m", "api",
        "--host", "127.0.0.1",
        "--port", str(ports["public"]),
        "--admin-port", str(ports["admin"]),
        "--pod-name", name,
        *args,
    ]  # fmt: skip
    proc = spawn(name, argv, log_dir, ports, env)
    try:
        wait_http_ok(proc.url("public", "/readyz"), proc=proc.popen)
        wait_http_ok(proc.url("admin", "/metrics"), proc=proc.popen)  # open even with a token
    except Exception:
        proc.kill()
        raise RuntimeError(f"{name} did not start:\n{proc.log()}") from None
    return proc
