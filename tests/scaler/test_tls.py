"""TLS and mTLS on the gRPC port, with certificates made here by trustme; renewed files."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import grpc
import pytest
import trustme

from harness.fakepods import FakePod
from scaler._proto import externalscaler_pb2_grpc as pb_grpc
from scaler.config import ConfigError, load
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


def tls_argv(cert: Path, key: Path, client_ca: Path | None = None) -> list[str]:
    argv = ["--tls-cert", str(cert), "--tls-key", str(key)]
    return argv + (["--tls-client-ca", str(client_ca)] if client_ca else [])


def bad_tls_files(tmp_path: Path, ca: trustme.CA, case: str) -> list[str]:
    """Flags naming TLS files with one thing wrong, as `case` says."""
    issued = ca.issue_cert("localhost")
    cert = write_pem(tmp_path, "tls.crt", issued.cert_chain_pems[0])
    key = write_pem(tmp_path, "tls.key", issued.private_key_pem)
    other_key = write_pem(tmp_path, "other.key", ca.issue_cert("other").private_key_pem)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    cases = {
        "cert-is-a-key": tls_argv(key, key),
        "key-is-a-cert": tls_argv(cert, cert),
        "key-of-another-cert": tls_argv(cert, other_key),
        "cert-not-base64": tls_argv(garbage, key),
        "client-ca-is-a-key": tls_argv(cert, key, key),
        "client-ca-not-base64": tls_argv(cert, key, garbage),
        "key-unreadable": tls_argv(cert, tmp_path),
    }
    return cases[case]


@pytest.mark.parametrize(
    ("case", "flag", "says"),
    [
        pytest.param("cert-is-a-key", "--tls-cert", "not a PEM certificate", id="cert-is-a-key"),
        pytest.param("key-is-a-cert", "--tls-key", "not a PEM private key", id="key-is-a-cert"),
        pytest.param("key-of-another-cert", "--tls-key", "does not match", id="key-mismatch"),
        pytest.param("cert-not-base64", "--tls-cert", "not a valid PEM", id="cert-garbage"),
        pytest.param("client-ca-is-a-key", "--tls-client-ca", "not a PEM", id="ca-is-a-key"),
        pytest.param("client-ca-not-base64", "--tls-client-ca", "not a valid", id="ca-garbage"),
        pytest.param("key-unreadable", "--tls-key", "is a directory", id="key-is-a-directory"),
    ],
)
def test_a_bad_tls_file_is_named_by_its_flag_and_what_is_wrong(
    tmp_path: Path, ca: trustme.CA, case: str, flag: str, says: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(bad_tls_files(tmp_path, ca, case), env={})
    message = str(caught.value)
    assert message.startswith(f"{flag}: "), message
    assert says in message, message
    assert "in use" not in message


def test_the_process_says_what_is_wrong_with_a_tls_file_not_that_the_port_is_in_use(
    tmp_path: Path, ca: trustme.CA
) -> None:
    argv = bad_tls_files(tmp_path, ca, "key-of-another-cert")
    done = subprocess.run(
        [sys.executable, "-m", "scaler", "--grpc-port", "0", "--http-port", "0", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "--tls-key" in done.stderr and "does not match" in done.stderr, done.stderr
    assert "in use" not in done.stderr


def test_good_tls_files_load(tmp_path: Path, ca: trustme.CA) -> None:
    issued = ca.issue_cert("localhost")
    cert = write_pem(tmp_path, "tls.crt", issued.cert_chain_pems[0])
    key = write_pem(tmp_path, "tls.key", issued.private_key_pem)
    client_ca = write_pem(tmp_path, "ca.crt", ca.cert_pem)
    config = load(tls_argv(cert, key, client_ca), env={})
    assert config.tls and config.tls_client_ca == client_ca


class SecretVolume:
    """TLS files laid out as kubelet mounts a Secret, or rewritten in place by hand.

    kubelet writes a new version directory and swaps the `..data` symlink that every
    file links through, so all files change at once (new inodes); by hand, each file is
    rewritten where it is, one after the other.
    """

    NAMES = ("tls.crt", "tls.key", "ca.crt")

    def __init__(self, root: Path, swap: bool) -> None:
        self.root = root
        self.swap = swap
        self.versions = 0

    def path(self, name: str) -> Path:
        return self.root / name

    def write(self, files: dict[str, bytes]) -> None:
        if not self.swap:
            for name, data in files.items():
                self.path(name).write_bytes(data)
            return
        self.versions += 1
        version = self.root / f"..v{self.versions}"
        version.mkdir()
        for name in self.NAMES:  # a Secret update carries every key
            current = self.path(name)
            data = files.get(name) or (current.read_bytes() if current.exists() else b"")
            (version / name).write_bytes(data)
        (self.root / "..data_tmp").symlink_to(version.name)
        os.replace(self.root / "..data_tmp", self.root / "..data")
        for name in self.NAMES:
            if not self.path(name).is_symlink():
                self.path(name).symlink_to(Path("..data") / name)


def issued_files(ca: trustme.CA) -> tuple[trustme.LeafCert, dict[str, bytes]]:
    """A server certificate from `ca`, and the Secret's files: `ca` also signs the clients."""
    server = ca.issue_cert("localhost", "127.0.0.1")
    files = {
        "tls.crt": server.cert_chain_pems[0].bytes(),
        "tls.key": server.private_key_pem.bytes(),
        "ca.crt": ca.cert_pem.bytes(),
    }
    return server, files


async def served_certificate(port: int, ca: trustme.CA) -> bytes:
    """The certificate the port presents to a client that trusts `ca` and holds its cert."""
    context = ssl.create_default_context(cadata=ca.cert_pem.bytes().decode())
    ca.issue_cert("keda-operator.keda.svc").configure_cert(context)
    context.set_alpn_protocols(["h2"])
    _, writer = await asyncio.open_connection(
        "127.0.0.1", port, ssl=context, server_hostname="localhost"
    )
    der: bytes = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return der


def der(cert: trustme.LeafCert) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.cert_chain_pems[0].bytes().decode())


async def metric_spec_through(channel: grpc.aio.Channel, pod: FakePod) -> float:
    stub = pb_grpc.ExternalScalerStub(channel)  # type: ignore[no-untyped-call]
    spec = await stub.GetMetricSpec(ref([pod]), timeout=5)
    return float(spec.metricSpecs[0].targetSizeFloat)


async def mtls_scaler_on(volume: SecretVolume) -> Scaler:
    config = with_config(
        tls_cert=volume.path("tls.crt"),
        tls_key=volume.path("tls.key"),
        tls_client_ca=volume.path("ca.crt"),
    )
    return await start(config)


@pytest.mark.parametrize("swap", [True, False], ids=["kubelet-symlink-swap", "rewritten-in-place"])
async def test_renewed_tls_files_serve_new_connections_without_a_restart(
    tmp_path: Path, pod: FakePod, swap: bool
) -> None:
    old_ca, new_ca = trustme.CA(), trustme.CA()
    volume = SecretVolume(tmp_path, swap)
    old_cert, old_files = issued_files(old_ca)
    volume.write(old_files)
    scaler = await mtls_scaler_on(volume)
    target = f"localhost:{scaler.grpc_port}"
    try:
        async with grpc.aio.secure_channel(target, client_credentials(old_ca, True)) as before:
            assert await metric_spec_through(before, pod) == pytest.approx(40.0)
            assert await served_certificate(scaler.grpc_port, old_ca) == der(old_cert)
            new_cert, new_files = issued_files(new_ca)
            volume.write(new_files)
            assert await served_certificate(scaler.grpc_port, new_ca) == der(new_cert)
            async with grpc.aio.secure_channel(target, client_credentials(new_ca, True)) as after:
                assert await metric_spec_through(after, pod) == pytest.approx(40.0)
            async with grpc.aio.secure_channel(target, client_credentials(old_ca, True)) as stale:
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await metric_spec_through(stale, pod)
                assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
            # the connection made before the renewal is not cut
            assert await metric_spec_through(before, pod) == pytest.approx(40.0)
    finally:
        await scaler.stop()


def half_a_renewal(case: str, old: dict[str, bytes], new: dict[str, bytes]) -> dict[str, bytes]:
    """The files as a renewal leaves them when it stops part way, as `case` says."""
    cases = {
        "key-not-yet-written": {"tls.crt": new["tls.crt"]},
        "cert-cut-short": {**new, "tls.crt": new["tls.crt"][: len(new["tls.crt"]) // 2]},
        "key-emptied": {"tls.crt": new["tls.crt"], "tls.key": b""},
    }
    return old | cases[case]


@pytest.mark.parametrize("case", ["key-not-yet-written", "cert-cut-short", "key-emptied"])
async def test_tls_files_that_do_not_load_keep_the_last_good_certificate(
    tmp_path: Path, pod: FakePod, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    old_ca, new_ca = trustme.CA(), trustme.CA()
    volume = SecretVolume(tmp_path, swap=False)
    old_cert, old_files = issued_files(old_ca)
    volume.write(old_files)
    scaler = await mtls_scaler_on(volume)
    try:
        new_cert, new_files = issued_files(new_ca)
        volume.write(half_a_renewal(case, old_files, new_files))
        for _ in range(3):
            assert await served_certificate(scaler.grpc_port, old_ca) == der(old_cert)
        warnings = [
            r for r in caplog.records if r.name == "scaler.tls" and r.levelno >= logging.WARNING
        ]
        assert len(warnings) == 1, [r.getMessage() for r in warnings]
        assert "serving the previous" in warnings[0].getMessage()
        volume.write(new_files)  # the renewal completes
        assert await served_certificate(scaler.grpc_port, new_ca) == der(new_cert)
    finally:
        await scaler.stop()
