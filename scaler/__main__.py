"""`rating-scaler` / `python -m scaler`: parse the flags, then run."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from scaler.config import ConfigError, load
from scaler.server import run


def main(argv: Sequence[str] | None = None) -> None:
    try:
        config = load(argv)
    except ConfigError as exc:
        print(f"rating-scaler: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    sys.exit(run(config=config))


if __name__ == "__main__":
    main()
