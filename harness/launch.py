"""`python -m harness.launch [OPTIONS] -- COMMAND...`: set up this process, then exec COMMAND.

What a pre-exec hook of `subprocess.Popen` would do between fork and exec, done instead in a
fresh interpreter, which is safe however many threads the parent runs: `--parent PID`
asks the kernel to SIGKILL the command when the thread that started it dies (Linux
only; the flag is ignored elsewhere), `--open-files N` lifts the soft open-file limit
towards N, `--cpu N` pins the command to one core. Limits and affinity survive exec.

Imports the standard library only; `harness.child` runs it by its file path, so that
starting a child costs one bare interpreter start-up and no package import.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.parent is not None:
        die_with(args.parent)
    if args.open_files is not None:
        raise_open_files(args.open_files)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    os.execvp(args.command[0], args.command)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness.launch", description=__doc__)
    parser.add_argument("--parent", type=int, metavar="PID", help="die when PID dies")
    parser.add_argument("--open-files", type=int, metavar="N", help="soft RLIMIT_NOFILE")
    parser.add_argument("--cpu", type=int, metavar="CORE", help="run on this core only")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    if not args.command:
        parser.error("a command is needed after --")
    return args


def die_with(parent_pid: int) -> None:
    """SIGKILL from the kernel when the parent goes; at once if it went already."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    if os.getppid() != parent_pid:  # it died before the prctl took effect
        os._exit(1)


def raise_open_files(wanted: int) -> int:
    """Lift the soft open-file limit towards `wanted` (at most the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


if __name__ == "__main__":
    main()
