"""`python -m bench [NAME ...]`: run the benchmarks and print their tables.

Each benchmark is a module `bench/<name>.py` with `main(argv: list[str]) -> None`.
With no name, all run one after another. Figures go into docs/BENCHMARKS.md by hand,
with the command that produced them.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).parent
    return sorted(
        info.name for info in pkgutil.iter_modules([str(here)]) if not info.name.startswith("_")
    )


def main(argv: list[str] | None = None) -> None:
    names = available()
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *names], help="benchmarks to run")
    args, rest = parser.parse_known_args(argv)
    for name in args.names or names:
        print(f"\n## bench/{name}.py\n", flush=True)
        importlib.import_module(f"bench.{name}").main(rest)


if __name__ == "__main__":
    main(sys.argv[1:])
