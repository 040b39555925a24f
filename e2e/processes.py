"""The harness's own children: control-plane components and KEDA, each with a log file.

Each child runs in a session of its own (`start_new_session`, nothing run between fork
and exec), so a terminal's Ctrl-C reaches only the harness, which then stops its
children in order;
the whole run also lives in a PID namespace of its own (see `e2e.sandbox`), so the
kernel ends whatever is left when the harness exits, however it exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

STOP_GRACE_S = 10.0


class ComponentDied(RuntimeError):
    """A component the run depends on exited while the run was going on."""


@dataclass
class Proc:
    name: str
    argv: Sequence[str]
    log_path: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    popen: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Proc:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                list(self.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def check(self) -> None:
        """Raise `ComponentDied` (with the log's tail) if the process has exited."""
        if self.popen is not None and self.popen.poll() is not None:
            raise ComponentDied(
                f"{self.name} exited with {self.popen.returncode}; {self.log_path}:\n"
                + self.log_tail()
            )

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal_group(self, signum: int) -> None:
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signum)

    def stop(self, grace_s: float = STOP_GRACE_S) -> int | None:
        """SIGTERM to the process group, SIGKILL after `grace_s`; the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.signal_group(signal.SIGTERM)
            try:
                self.popen.wait(grace_s)
            except subprocess.TimeoutExpired:
                self.signal_group(signal.SIGKILL)
                self.popen.wait()
        self.signal_group(signal.SIGKILL)  # whatever it left behind in its group
        return self.popen.returncode


class Procs:
    """Every component started; `stop_all` stops them newest first."""

    def __init__(self) -> None:
        self.started: list[Proc] = []

    def start(self, proc: Proc) -> Proc:
        self.started.append(proc.start())
        return proc

    def check_all(self) -> None:
        for proc in self.started:
            proc.check()

    def stop_all(self) -> None:
        ignored = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for proc in reversed(self.started):
                proc.stop()
        finally:
            for signum, action in ignored.items():
                signal.signal(signum, action)


def wait_for(
    what: str, check: Callable[[], object], timeout_s: float, procs: Procs, every_s: float = 0.2
) -> None:
    """Poll `check()` until it returns true; fail if a component dies or time runs out."""
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        procs.check_all()
        try:
            if check():
                return
        except Exception as error:  # the thing may not answer yet
            last_error = f" (last: {type(error).__name__}: {str(error)[:200]})"
        time.sleep(every_s)
    raise TimeoutError(f"{what}: not within {timeout_s:g} s{last_error}")
