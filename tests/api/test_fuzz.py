"""schemathesis against `/openapi.json` of a live server: no 5xx, and answers match the document.

Valid requests (which must get 2xx) and invalid ones (which must be refused with a
documented 4xx) are generated from the document, a bounded number per operation.
The cases are drawn through schemathesis's Python API with hypothesis directly: its
pytest plugin's lazy `from_fixture` loader does not run under pytest 9.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from tests.procs import Proc

# Invalid bodies must get one of the documented client errors; 413 is how a batch over
# --max-batch is refused, which the default expectations of schemathesis leave out.
REJECTION = {"expected-statuses": ["400", "413", "415", "422"]}
VALID, INVALID = GenerationMode.POSITIVE, GenerationMode.NEGATIVE
# (path, method, mode, examples): requests without parameters have no invalid form.
CASES = [
    ("/v1/rate", "POST", VALID, 150),
    ("/v1/rate", "POST", INVALID, 150),
    ("/healthz", "GET", VALID, 5),
    ("/readyz", "GET", VALID, 5),
    ("/openapi.json", "GET", VALID, 5),
]


@pytest.fixture(scope="module")
def served_schema(roomy_pod: Proc) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict({"checks": {"negative_data_rejection": REJECTION}})
    return schemathesis.openapi.from_url(roomy_pod.url("public", "/openapi.json"), config=config)


@pytest.mark.parametrize(
    ("path", "method", "mode", "examples"),
    CASES,
    ids=[f"{method} {path} {mode.value}" for path, method, mode, _ in CASES],
)
def test_generated_requests_get_documented_answers(
    served_schema: schemathesis.BaseSchema,
    path: str,
    method: str,
    mode: GenerationMode,
    examples: int,
) -> None:
    operation = served_schema[path][method]

    @settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate()

    check()
