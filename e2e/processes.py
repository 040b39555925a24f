"""The harness's own children: control-plane components and KEDA, each with a log file.

Each component is a `harness.Child` in a process group of its own (so a terminal's
Ctrl-C reaches only the harness, which then stops its children in order), stopped with
its whole group. It is not tied to the thread that started it: the whole run lives in
a PID namespace of its own (see `e2e.sandbox`), so the kernel ends whatever is left
when the harness exits, however it exits.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from harness import Child

STOP_GRACE_S = 10.0


class ComponentDied(RuntimeError):
    """A component the run depends on exited while the run was going on."""


class Proc(Child):
    """One component: `argv` run in `cwd` (this process's own by default), with `env`
    added to the environment, signalled as a process group."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        super().__init__(
            name, argv, log_path, env=env, cwd=cwd or Path.cwd(), die_with_parent=False, group=True
        )

    def check(self) -> None:
        """Raise `ComponentDied` (with the log's tail) if the process has exited."""
        if self.starts and not self.running:
            raise ComponentDied(
                f"{self.name} exited with {self.returncode}; {self.log_path}:\n" + self.log_tail(15)
            )


class Procs:
    """Every component started; `stop_all` stops them newest first, one after the other."""

    def __init__(self) -> None:
        self.started: list[Proc] = []

    def start(self, proc: Proc) -> Proc:
        proc.start()
        self.started.append(proc)
        return proc

    def check_all(self) -> None:
        for proc in self.started:
            proc.check()

    def stop_all(self) -> None:
        ignored = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            for proc in reversed(self.started):
                proc.stop(STOP_GRACE_S)
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
