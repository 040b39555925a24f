"""The committed stubs are exactly what `make proto` generates from proto/."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaler._proto.generate import ROOT, generate

GENERATED = ["externalscaler_pb2.py", "externalscaler_pb2.pyi", "externalscaler_pb2_grpc.py"]


@pytest.mark.parametrize("name", GENERATED)
def test_regenerating_changes_nothing(tmp_path: Path, name: str) -> None:
    generate(tmp_path)
    fresh = (tmp_path / "scaler" / "_proto" / name).read_text()
    committed = (ROOT / "scaler" / "_proto" / name).read_text()
    assert fresh == committed, f"scaler/_proto/{name} is stale: run `make proto` and commit"


def test_service_matches_keda() -> None:
    from scaler._proto import externalscaler_pb2 as pb

    service = pb.DESCRIPTOR.services_by_name["ExternalScaler"]
    assert service.full_name == "externalscaler.ExternalScaler"
    assert [m.name for m in service.methods] == [
        "IsActive", "StreamIsActive", "GetMetricSpec", "GetMetrics", "StreamMetricSpec",
    ]  # fmt: skip
    stream = service.methods_by_name["StreamMetricSpec"]
    assert stream.input_type.full_name == "externalscaler.ScaledObjectRef"
    assert stream.output_type.full_name == "externalscaler.GetMetricSpecResponse"
    assert (stream.client_streaming, stream.server_streaming) == (False, True)
