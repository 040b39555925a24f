"""`harness.group`: real child processes, checked, stopped in order or all at once."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness import Child, wait_log_line
from harness.group import ChildDied, Group, component, wait_for

# Prints "ready" and "term" on SIGTERM, after a pause, so that the order of stops shows.
COMPONENT = """
import signal, sys, time
def term(*_):
    print("term", flush=True); time.sleep(0.2); sys.exit(0)
signal.signal(signal.SIGTERM, term)
print("ready", flush=True)
time.sleep(120)
"""


def sleeper(tmp_path: Path, name: str, code: str = COMPONENT) -> Child:
    return component(name, [sys.executable, "-c", code], tmp_path / f"{name}.log", cwd=tmp_path)


def test_a_component_that_exits_fails_the_check_with_its_log(tmp_path: Path) -> None:
    procs = Group(one_by_one=True)
    procs.start(sleeper(tmp_path, "quitter", "print('bad flag'); raise SystemExit(3)"))
    with pytest.raises(ChildDied, match=r"quitter exited with 3(.|\n)*bad flag"):
        wait_for("something", lambda: False, 30, procs)


def not_yet() -> bool:
    raise KeyError("x")


def test_wait_for_names_what_did_not_come_and_the_last_error(tmp_path: Path) -> None:
    procs = Group(one_by_one=True)
    procs.start(sleeper(tmp_path, "steady"))
    try:
        with pytest.raises(TimeoutError, match=r"the answer: not within 0.3 s \(last: KeyError"):
            wait_for("the answer", not_yet, 0.3, procs, every_s=0.05)
    finally:
        procs.stop_all()


def test_stop_all_stops_the_newest_first_each_in_turn(tmp_path: Path) -> None:
    procs = Group(one_by_one=True)
    started = [procs.start(sleeper(tmp_path, name)) for name in ("etcd", "apiserver")]
    for proc in started:
        wait_log_line(proc, "^ready$")
    procs.stop_all()
    assert [proc.returncode for proc in started] == [0, 0]
    ended = {proc.name: proc.log_path.stat().st_mtime_ns for proc in started}
    assert ended["apiserver"] < ended["etcd"]


def test_stop_all_at_once_stops_every_child_and_skips_the_exited(tmp_path: Path) -> None:
    group = Group(tmp_path / "logs")
    code = [sys.executable, "-c", COMPONENT]
    running = [group.spawn(name, code) for name in ("pod-1", "pod-2")]
    quitter = group.spawn("quitter", [sys.executable, "-c", "raise SystemExit(4)"])
    for child in running:
        wait_log_line(child, "^ready$")
    assert quitter.popen.wait(30) == 4
    assert group.still_running() == running
    group.stop_all()
    assert [child.returncode for child in group.started] == [0, 0, 4]
    assert all(child.log_path.parent == tmp_path / "logs" for child in group.started)


def test_a_group_without_a_log_folder_refuses_to_spawn() -> None:
    with pytest.raises(ValueError, match="cannot spawn pod: this group has no log folder"):
        Group().spawn("pod", ["true"])
