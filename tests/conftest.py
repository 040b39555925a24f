from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.procs import Proc, start_rating_api

RatingPodFactory = Callable[..., Proc]


@pytest.fixture
def rating_pod(tmp_path: Path) -> Iterator[RatingPodFactory]:
    """Start real `rating-api` processes; all are stopped when the test ends."""
    started: list[Proc] = []

    def start(*args: str, **kwargs: object) -> Proc:
        proc = start_rating_api(tmp_path / "logs", *args, **kwargs)  # type: ignore[arg-type]
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
