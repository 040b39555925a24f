"""`rating-api` / `python -m api`: parse the command line, then serve."""

from __future__ import annotations

import sys

from api.config import load
from api.server import run


def main() -> None:
    sys.exit(run(config=load()))


if __name__ == "__main__":
    main()
