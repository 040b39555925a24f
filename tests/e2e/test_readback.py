"""The HPA's behavior beside its ScaledObject's: fields the API server adds are fine,
quantities compare by value, anything changed or dropped is not."""

from __future__ import annotations

from typing import Any

import pytest

from e2e.experiment.readback import same

WANTED = {
    "scaleUp": {
        "tolerance": "0.05",
        "policies": [{"type": "Percent", "value": 900, "periodSeconds": 10}],
    }
}


@pytest.mark.parametrize(
    ("found", "expected"),
    [
        (WANTED, True),
        ({"scaleUp": WANTED["scaleUp"] | {"tolerance": "50m", "selectPolicy": "Max"}}, True),
        ({"scaleUp": WANTED["scaleUp"] | {"tolerance": 0.05}}, True),
        ({"scaleUp": {"policies": WANTED["scaleUp"]["policies"]}}, False),
        ({"scaleUp": WANTED["scaleUp"] | {"tolerance": "100m"}}, False),
        ({"scaleUp": WANTED["scaleUp"] | {"policies": []}}, False),
        ({}, False),
    ],
    ids=["same", "defaults-added", "number", "tolerance-dropped", "changed", "policy-gone", "none"],
)
def test_hpa_holds_what_the_scaled_object_asks(found: dict[str, Any], expected: bool) -> None:
    assert same(WANTED, found) is expected
