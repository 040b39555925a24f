"""One command run as a child process, with its own log file, stopped for sure.

Children are spawned without a pre-exec hook (unsafe once the parent runs threads): each
gets its own process group (`process_group=0`: Ctrl-C in a terminal reaches the parent
only, which then stops its children in order; the session stays the parent's), and
whatever must happen between fork and exec (dying with the parent, a higher open-file
limit, a pinned core) is done by `harness/launch.py`, which then execs the command.

The kernel's parent-death signal is tied to the *thread* that spawned the child: spawn
from a thread that outlives the child (the main thread, or the event loop's).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TypedDict, Unpack

ROOT = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).resolve().with_name("launch.py")
STOP_TIMEOUT_S = 15.0
KILL_TIMEOUT_S = 5.0
POLL_EVERY_S = 0.02


class StartError(RuntimeError):
    """A child did not become ready: it exited, or time ran out. The text ends with the
    tail of the child's log."""

    def __init__(self, child: Child, reason: str) -> None:
        self.name = child.name
        self.reason = reason
        self.log_tail = child.log_tail()
        super().__init__(f"{child.name} {reason}; {child.log_path}:\n{self.log_tail}")


class Options(TypedDict, total=False):
    """The keyword options of `Child` and `spawn`: `ports` names the ports the command
    was given, for `Child.url()`; `env` is added to this process's environment;
    `die_with_parent` (default True) has the kernel SIGKILL the child when the spawning
    thread dies (Linux); `open_files` lifts its soft RLIMIT_NOFILE; `cpu` pins it;
    `cwd` is where it runs (the repository's root by default); `group` sends every
    signal to the child's whole process group, and SIGKILL to what is left of the group
    once the child has exited (for a command that starts commands of its own)."""

    ports: Mapping[str, int] | None
    env: Mapping[str, str] | None
    die_with_parent: bool
    open_files: int | None
    cpu: int | None
    cwd: Path | None
    group: bool


class Child:
    """A command with its log file (stdout and stderr), started with `start()` and
    started again the same way by calling `start()` once more (the log is appended)."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, **options: Unpack[Options]
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.ports = dict(options.get("ports") or {})
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(options.get("env") or {})}
        self.options = options
        self.starts = 0
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Child:
        """Spawn the command (again, if it ran before); returns self."""
        if self.running:
            raise RuntimeError(f"{self.name} is running already (pid {self.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab" if self.starts else "wb") as log:
            self._popen = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.options.get("cwd") or ROOT,
                env=self.env,
                process_group=0,
            )
        self.starts += 1
        return self

    def command(self) -> list[str]:
        """`argv`, behind the launcher when something must be set up before exec."""
        options = []
        if self.options.get("die_with_parent", True) and sys.platform.startswith("linux"):
            options += ["--parent", str(os.getpid())]
        for flag, key in (("--open-files", "open_files"), ("--cpu", "cpu")):
            value = self.options.get(key)
            options += [] if value is None else [flag, str(value)]
        if not options:
            return list(self.argv)
        return [sys.executable, "-I", "-S", str(LAUNCHER), *options, "--", *self.argv]

    @property
    def popen(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise RuntimeError(f"{self.name} was never started")
        return self._popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def url(self, port_name: str, path: str = "") -> str:
        return f"http://127.0.0.1:{self.ports[port_name]}{path}"

    def signal(self, signum: int) -> None:
        """Send `signum` if the child still runs (never to a reaped, reusable pid)."""
        if self.running:
            if self.options.get("group"):
                os.killpg(self.pid, signum)
            else:
                os.kill(self.pid, signum)

    def _kill_leftovers(self) -> None:
        """With `group`: SIGKILL to what the exited child left in its process group."""
        if self.options.get("group") and self._popen is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._popen.pid, signal.SIGKILL)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGCONT (so a frozen child can handle what follows), SIGTERM, wait up to
        `timeout_s`, then SIGKILL. Returns the exit code (negative: the signal)."""
        if self._popen is None:
            return 0
        self.ask_to_stop()
        try:
            code = self._popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return self.kill()
        self._kill_leftovers()
        return code

    async def stop_async(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """`stop()` without blocking the event loop."""
        self.ask_to_stop()
        code = await self.wait_async(timeout_s)
        if code is None:
            return self.kill()
        self._kill_leftovers()
        return code

    def ask_to_stop(self) -> None:
        """SIGCONT then SIGTERM, without waiting."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)

    def kill(self) -> int:
        """SIGKILL and reap. Returns the exit code (0 if it was never started)."""
        if self._popen is None:
            return 0
        self.signal(signal.SIGKILL)
        code = self._popen.wait(KILL_TIMEOUT_S)
        self._kill_leftovers()
        return code

    async def wait_async(self, timeout_s: float) -> int | None:
        """The exit code, or None if the child still runs after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while self.running:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(POLL_EVERY_S)
        return self.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 20) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def spawn(name: str, argv: Sequence[str], log_path: Path, **options: Unpack[Options]) -> Child:
    """A started `Child` (`options` as for `Child`)."""
    return Child(name, argv, log_path, **options).start()


def stop_all(children: Sequence[Child], timeout_s: float = STOP_TIMEOUT_S) -> list[int | None]:
    """Stop all at once, the last started first: SIGCONT and SIGTERM to each, one shared
    wait of up to `timeout_s`, SIGKILL for what still runs. Exit codes, in the given order."""
    for child in reversed(children):
        child.ask_to_stop()
    deadline = time.monotonic() + timeout_s
    for child in reversed(children):
        if child.running:
            try:
                child.popen.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        child._kill_leftovers()
    return [child.returncode for child in children]
