"""`e2e.processes`: components as real child processes, checked and stopped in order."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from e2e.processes import ComponentDied, Proc, Procs, wait_for
from harness import wait_log_line

# Prints "ready" and "term" on SIGTERM, after a pause, so that the order of stops shows.
COMPONENT = """
import signal, sys, time
def term(*_):
    print("term", flush=True); time.sleep(0.2); sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
time.sleep(120)
"""


def component(tmp_path: Path, name: str, code: str = COMPONENT) -> Proc:
    return Proc(name, [sys.executable, "-c", code], tmp_path / f"{name}.log", cwd=tmp_path)


def test_a_component_that_exits_fails_the_check_with_its_log(tmp_path: Path) -> None:
    procs = Procs()
    procs.start(component(tmp_path, "quitter", "print('bad flag'); raise SystemExit(3)"))
    with pytest.raises(ComponentDied, match=r"quitter exited with 3(.|\n)*bad flag"):
        wait_for("something", lambda: False, 30, procs)


def not_yet() -> bool:
    raise KeyError("x")


def test_wait_for_names_what_did_not_come_and_the_last_error(tmp_path: Path) -> None:
    procs = Procs()
    procs.start(component(tmp_path, "steady"))
    try:
        with pytest.raises(TimeoutError, match=r"the answer: not within 0.3 s \(last: KeyError"):
            wait_for("the answer", not_yet, 0.3, procs, every_s=0.05)
    finally:
        procs.stop_all()


def test_stop_all_stops_the_newest_first_each_in_turn(tmp_path: Path) -> None:
    procs = Procs()
    started = [procs.start(component(tmp_path, name)) for name in ("etcd", "apiserver")]
    for proc in started:
        wait_log_line(proc, "^ready$")
    procs.stop_all()
    assert [proc.returncode for proc in started] == [0, 0]
    ended = {proc.name: proc.log_path.stat().st_mtime_ns for proc in started}
    assert ended["apiserver"] < ended["etcd"]
