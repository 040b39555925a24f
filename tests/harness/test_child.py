"""`harness.child`: real child processes, their logs, and every way they are stopped."""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Unpack

import pytest

from harness import ROOT, Child, spawn, stop_all, wait_log_line, wait_until
from harness.child import Options
from harness.launch import parse_args

# Says "ready" once its SIGTERM handler is in place; SIGTERM makes it say "term", exit 0.
GRACEFUL = """
import signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: (print("term", flush=True), sys.exit(0)))
print("ready", flush=True)
time.sleep(120)
"""
STUBBORN = """
import signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ready", flush=True)
time.sleep(120)
"""


def python(tmp_path: Path, code: str, name: str = "child", **options: Unpack[Options]) -> Child:
    return spawn(name, [sys.executable, "-c", code], tmp_path / f"{name}.log", **options)


def gone(pid: int) -> bool:
    """No such process, or only its zombie (an orphan's reaper is not us)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_stdout_and_stderr_go_to_the_log_file(tmp_path: Path) -> None:
    child = python(tmp_path, "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)")
    assert child.popen.wait(30) == 3
    assert child.log().splitlines() == ["out", "err"]
    assert child.log_tail(1) == "err"
    assert child.log_path == tmp_path / "child.log"


def test_a_second_start_appends_to_the_log(tmp_path: Path) -> None:
    child = python(tmp_path, "print('hello')")
    child.popen.wait(30)
    first_pid = child.pid
    child.start().popen.wait(30)
    assert child.log().splitlines() == ["hello", "hello"]
    assert child.starts == 2
    assert child.pid != first_pid


def test_starting_a_running_child_is_refused(tmp_path: Path) -> None:
    child = python(tmp_path, GRACEFUL)
    with pytest.raises(RuntimeError, match="running already"):
        child.start()
    child.stop()


def test_stop_lets_sigterm_be_handled(tmp_path: Path) -> None:
    child = python(tmp_path, GRACEFUL)
    wait_log_line(child, "^ready$")
    assert child.stop() == 0
    assert "term" in child.log()


def test_stop_thaws_a_frozen_child_so_that_it_handles_sigterm(tmp_path: Path) -> None:
    child = python(tmp_path, GRACEFUL)
    wait_log_line(child, "^ready$")
    child.signal(signal.SIGSTOP)
    assert child.stop(timeout_s=10) == 0  # without SIGCONT first it would be killed: -9
    assert "term" in child.log()


async def test_stop_async_thaws_a_frozen_child_too(tmp_path: Path) -> None:
    child = python(tmp_path, GRACEFUL)
    wait_log_line(child, "^ready$")
    child.signal(signal.SIGSTOP)
    assert await child.stop_async(timeout_s=10) == 0
    assert not child.running


def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    child = python(tmp_path, STUBBORN)
    wait_log_line(child, "^ready$")
    assert child.stop(timeout_s=0.5) == -signal.SIGKILL


async def test_wait_async_says_none_while_it_runs_then_the_code(tmp_path: Path) -> None:
    child = python(tmp_path, GRACEFUL)
    wait_log_line(child, "^ready$")
    assert await child.wait_async(0.1) is None
    child.signal(signal.SIGTERM)
    assert await child.wait_async(30) == 0


def test_stop_all_stops_every_child(tmp_path: Path) -> None:
    children = [python(tmp_path, GRACEFUL, f"c{i}") for i in range(2)]
    children.append(python(tmp_path, STUBBORN, "stubborn"))
    for child in children:
        wait_log_line(child, "^ready$")
    assert stop_all(children, timeout_s=2) == [0, 0, -signal.SIGKILL]


def test_an_unstarted_child_stops_and_says_so(tmp_path: Path) -> None:
    child = Child("never", ["true"], tmp_path / "never.log")
    assert not child.running
    assert child.returncode is None
    assert child.stop() == 0
    with pytest.raises(RuntimeError, match="never started"):
        _ = child.pid


def test_the_child_has_its_own_process_group_in_our_session(tmp_path: Path) -> None:
    child = python(tmp_path, GRACEFUL)
    wait_log_line(child, "^ready$")
    assert os.getpgid(child.pid) == child.pid
    assert os.getsid(child.pid) == os.getsid(0)
    child.stop()


# Starts a `sleep` (in its own process group), prints its pid, and exits on SIGTERM.
LEAVES_A_SLEEP = """
import signal, subprocess, sys, time
sleeper = subprocess.Popen(["sleep", "120"])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(sleeper.pid, flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("group", [True, False], ids=["group", "alone"])
def test_group_stops_what_the_child_started(tmp_path: Path, group: bool) -> None:
    child = python(tmp_path, LEAVES_A_SLEEP, group=group)
    sleeper = int(wait_log_line(child, r"^\d+$").group())
    assert child.stop() == 0
    deadline = time.monotonic() + 10
    while group and not gone(sleeper) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(sleeper) == group
    if not group:
        os.kill(sleeper, signal.SIGKILL)


@pytest.mark.parametrize("given", [True, False], ids=["given", "root"])
def test_the_child_runs_in_cwd_or_the_repository_root(tmp_path: Path, given: bool) -> None:
    child = python(tmp_path, "import os; print(os.getcwd())", cwd=tmp_path if given else None)
    assert child.popen.wait(30) == 0
    assert Path(child.log().strip()) == (tmp_path if given else ROOT)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("die_with_parent", [True, False], ids=["dies", "outlives"])
def test_a_child_dies_with_its_parent_when_asked(tmp_path: Path, die_with_parent: bool) -> None:
    grandchild_log = tmp_path / "grandchild.log"
    parent_code = (
        "import sys, time; from pathlib import Path; from harness import spawn; "
        f"c = spawn('g', ['sleep', '60'], Path({str(grandchild_log)!r}), "
        f"die_with_parent={die_with_parent}); print(c.pid, flush=True); time.sleep(60)"
    )
    parent = python(tmp_path, parent_code, "parent", die_with_parent=False)
    grandchild = int(wait_log_line(parent, r"^\d+$").group())
    wait_until(parent, lambda: Path(f"/proc/{grandchild}/exe").exists(), "the grandchild")
    assert parent.kill() == -signal.SIGKILL
    deadline = time.monotonic() + 10
    while not gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert gone(grandchild) == die_with_parent
    if not die_with_parent:
        os.kill(grandchild, signal.SIGKILL)


@pytest.fixture
def lowered_open_files() -> Iterator[int]:
    """Our soft open-file limit 100 under the hard one for the test; the hard limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    ceiling = soft + 100 if hard == resource.RLIM_INFINITY else hard
    resource.setrlimit(resource.RLIMIT_NOFILE, (ceiling - 100, hard))
    yield ceiling
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_open_files_lifts_the_childs_soft_limit(tmp_path: Path, lowered_open_files: int) -> None:
    code = "import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    child = python(tmp_path, code, open_files=lowered_open_files)
    assert child.popen.wait(30) == 0
    assert int(child.log()) == lowered_open_files


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no CPU affinity here")
def test_cpu_pins_the_child_to_one_core(tmp_path: Path) -> None:
    core = max(os.sched_getaffinity(0))
    child = python(tmp_path, "import os; print(sorted(os.sched_getaffinity(0)))", cpu=core)
    assert child.popen.wait(30) == 0
    assert child.log().strip() == f"[{core}]"


def test_the_launcher_wants_a_command() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--cpu", "0", "--"])
    assert parse_args(["--cpu", "0", "--", "sleep", "1"]).command == ["sleep", "1"]
