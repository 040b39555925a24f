"""TLS and mTLS on the gRPC port, with certificates made here by trustme."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
import trustme

from harness.fakepods import FakePod
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.server import Scaler, start
from tests.scaler.conftest import ref, with_config


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def write_pem(tmp_path: Path, name: str, blob: trustme.Blob) -> Path:
    path = tmp_path / name
    blob.write_to_path(str(path))
    return path


def client_credentials(ca: trustme.CA, with_cert: bool) -> grpc.ChannelCredentials:
    if not with_cert:
        return grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
    client = ca.issue_cert("keda-operator.keda.svc")
    return grpc.ssl_channel_credentials(
        root_certificates=ca.cert_pem.bytes(),
        private_key=client.private_key_pem.bytes(),
        certificate_chain=client.cert_chain_pems[0].bytes(),
    )


async def tls_scaler(tmp_path: Path, ca: trustme.CA, mutual: bool) -> Scaler:
    server_cert = ca.issue_cert("localhost", "127.0.0.1")
    config = with_config(
        tls_cert=write_pem(tmp_path, "tls.crt", server_cert.cert_chain_pems[0]),
        tls_key=write_pem(tmp_path, "tls.key", server_cert.private_key_pem),
        tls_client_ca=write_pem(tmp_path, "ca.crt", ca.cert_pem) if mutual else None,
    )
    return await start(config)


@pytest.fixture
async def pod(fake_pods: Callable[..., Awaitable[FakePod]]) -> AsyncIterator[FakePod]:
    yield await fake_pods(demand_per_s=10.0)


@pytest.mark.parametrize(
    ("mutual", "client_cert", "allowed"),
    [
        pytest.param(False, False, True, id="tls"),
        pytest.param(True, True, True, id="mtls-with-client-cert"),
        pytest.param(True, False, False, id="mtls-without-client-cert-refused"),
    ],
)
async def test_tls_modes(
    tmp_path: Path, ca: trustme.CA, pod: FakePod, mutual: bool, client_cert: bool, allowed: bool
) -> None:
    scaler = await tls_scaler(tmp_path, ca, mutual)
    try:
        credentials = client_credentials(ca, client_cert)
        target = f"localhost:{scaler.grpc_port}"
        async with grpc.aio.secure_channel(target, credentials) as channel:
            stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
            if allowed:
                spec = await stub.GetMetricSpec(ref([pod]), timeout=5)
                assert spec.metricSpecs[0].targetSizeFloat == pytest.approx(40.0)
            else:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await stub.GetMetricSpec(ref([pod]), timeout=5)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        await scaler.stop()


async def test_plaintext_client_is_refused_by_a_tls_port(
    tmp_path: Path, ca: trustme.CA, pod: FakePod
) -> None:
    scaler = await tls_scaler(tmp_path, ca, mutual=False)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{scaler.grpc_port}") as channel:
            stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
            with pytest.raises(grpc.aio.AioRpcError):
                await stub.GetMetricSpec(ref([pod]), timeout=3)
    finally:
        await scaler.stop()
