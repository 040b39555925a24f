"""A run's children as one group: each registered as it starts, checked, all stopped.

`Group.spawn` starts a command with its log in the group's folder; `Group.start` starts
a `Child` made elsewhere. `check_all` raises `ChildDied` (with the log's tail) when a
child the run depends on has exited; `wait_for` polls a condition and checks the group
between polls. `stop_all` stops whatever is left, newest first, with SIGINT and SIGTERM
ignored meanwhile (a second Ctrl-C cannot cut the cleanup short): all at once by
default (the demo's pods, load generator and Prometheus), or one after the other for
components that depend on the ones started before them (`one_by_one`: KEDA, then the
controller manager, then the API server, then etcd).

`component` makes the child of a long run: signalled as a process group (it may start
commands of its own) and with no parent-death signal, as it outlives the thread that
started it (the e2e run lives in a PID namespace of its own, see `e2e.cluster.sandbox`, so the
kernel ends whatever is left when the run exits, however it exits).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from harness.child import Child, spawn, stop_all

STOP_TIMEOUT_S = 10.0


class ChildDied(RuntimeError):
    """A child the run depends on exited while the run was going on."""


def component(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Child:
    """`argv` run in `cwd` (this process's own by default) with `env` added, signalled
    as a process group, not tied to the thread that starts it."""
    return Child(
        name, argv, log_path, env=env, cwd=cwd or Path.cwd(), die_with_parent=False, group=True
    )


class Group:
    """Every child a run starts, in start order; `log_dir` is where `spawn` puts logs."""

    def __init__(
        self,
        log_dir: Path | None = None,
        *,
        one_by_one: bool = False,
        stop_timeout_s: float = STOP_TIMEOUT_S,
    ) -> None:
        self.log_dir = log_dir
        self.one_by_one = one_by_one
        self.stop_timeout_s = stop_timeout_s
        self.started: list[Child] = []

    def start(self, child: Child) -> Child:
        child.start()
        self.started.append(child)
        return child

    def spawn(
        self, name: str, argv: Sequence[str], ports: Mapping[str, int] | None = None
    ) -> Child:
        if self.log_dir is None:
            raise ValueError(f"cannot spawn {name}: this group has no log folder")
        child = spawn(name, argv, self.log_dir / f"{name}.log", ports=ports)
        self.started.append(child)
        return child

    def still_running(self) -> list[Child]:
        return [child for child in self.started if child.running]

    def check_all(self) -> None:
        """Raise `ChildDied` naming the first child that has exited, with its log's tail."""
        for child in self.started:
            if child.starts and not child.running:
                raise ChildDied(
                    f"{child.name} exited with {child.returncode}; {child.log_path}:\n"
                    + child.log_tail(15)
                )

    def stop_all(self) -> None:
        """Stop whatever still runs, newest first; signals ignored meanwhile."""
        with signals_ignored():
            if self.one_by_one:
                for child in reversed(self.started):
                    child.stop(self.stop_timeout_s)
            else:
                stop_all(self.still_running(), self.stop_timeout_s)


def wait_for(
    what: str, check: Callable[[], object], timeout_s: float, group: Group, every_s: float = 0.2
) -> None:
    """Poll `check()` until it returns true; fail if a child of `group` dies or time runs
    out (naming `what` and the last error `check` raised)."""
    deadline = time.monotonic() + timeout_s
    last_error = ""
    while time.monotonic() < deadline:
        group.check_all()
        try:
            if check():
                return
        except Exception as error:  # the thing may not answer yet
            last_error = f" (last: {type(error).__name__}: {str(error)[:200]})"
        time.sleep(every_s)
    raise TimeoutError(f"{what}: not within {timeout_s:g} s{last_error}")


@contextmanager
def signals_ignored() -> Iterator[None]:
    """SIGINT and SIGTERM ignored within the block."""
    ignored = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, action in ignored.items():
            signal.signal(sig, action)
