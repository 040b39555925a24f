"""`rating-activator` / `python -m activator`: parse the command line, then serve."""

from __future__ import annotations

import sys

from activator.config import load
from activator.server import run


def main() -> None:
    sys.exit(run(config=load()))


if __name__ == "__main__":
    main()
