from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.procs import Proc, start_rating_api


@pytest.fixture(scope="module")
def roomy_pod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proc]:
    """One rating-api whose bucket never runs dry, shared by the tests of a module."""
    proc = start_rating_api(
        tmp_path_factory.mktemp("logs"),
        "--bucket-capacity", "1e9",
        "--bucket-rate", "1e9",
        "--max-batch", "20",
        name="roomy-pod",
    )  # fmt: skip
    yield proc
    proc.stop()
