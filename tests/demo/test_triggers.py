"""How KEDA turns what a scaler or Prometheus answers into the HPA's value."""

from __future__ import annotations

import pytest

from demo.triggers import SCALED_OBJECT_METADATA, DirectTrigger, prometheus_value


@pytest.mark.parametrize(
    ("result", "expected"),
    [([], 0.0), ([{"value": [1.0, "41.5"]}], 41.5), ([{"value": [1.0, "NaN"]}], 0.0),
     ([{"value": [1.0, "+Inf"]}], 0.0), ([{"metric": {}}], 0.0)],
    ids=["empty-is-0-ignoreNullValues", "a-sample", "nan", "inf", "no-value"],
)  # fmt: skip
def test_prometheus_value(result: list[dict[str, object]], expected: float) -> None:
    assert prometheus_value(result) == expected


async def test_the_trigger_sends_the_scaled_objects_metadata_and_the_ready_pods() -> None:
    trigger = DirectTrigger("127.0.0.1:1")
    try:
        ref = trigger.ref(["127.0.0.1:9002", "127.0.0.1:9001"])
    finally:
        await trigger.close()
    assert dict(ref.scalerMetadata) == {
        "scalerAddress": "127.0.0.1:1",
        "endpoints": "127.0.0.1:9002,127.0.0.1:9001",
        **SCALED_OBJECT_METADATA,
    }
    assert SCALED_OBJECT_METADATA == {"metric": "demand", "targetUtilization": "0.8",
                                      "activationDemand": "0", "window": "5"}  # fmt: skip
