"""`rating-scaler` / `python -m scaler`: parse the flags, then serve."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence

from scaler.config import ConfigError, load
from scaler.server import serve


def main(argv: Sequence[str] | None = None) -> None:
    try:
        config = load(argv)
    except ConfigError as exc:
        print(f"rating-scaler: error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=config.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux
        asyncio.run(serve(config))
    else:
        uvloop.run(serve(config))


if __name__ == "__main__":
    main()
