from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from harness import Child, RatingActivator, start_async
from tests.procs import Proc, log_path, start_rating_api

RatingPodFactory = Callable[..., Proc]
ActivatorFactory = Callable[..., Awaitable[tuple[RatingActivator, Child]]]


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


@pytest.fixture
def endpoints_file(tmp_path: Path) -> Path:
    """An empty endpoints file: no pod is ready."""
    path = tmp_path / "endpoints"
    path.write_text("")
    return path


@pytest.fixture
async def activator(tmp_path: Path, endpoints_file: Path) -> AsyncIterator[ActivatorFactory]:
    """Start real `rating-activator` processes on `endpoints_file`; stopped at the end."""
    started: list[Child] = []

    async def start(**flags: object) -> tuple[RatingActivator, Child]:
        service = RatingActivator(endpoints_file=endpoints_file, **flags)  # type: ignore[arg-type]
        child = await start_async(service, log_path(tmp_path / "logs", "rating-activator"))
        started.append(child)
        return service, child

    yield start
    for child in started:
        child.kill()
