"""The gRPC port's TLS files, re-read when they change, so that a rotated Secret serves.

cert-manager renews a certificate by rewriting the Secret, and kubelet swaps the mounted
files; a server that read them once keeps the old certificate until it expires and every
handshake fails. gRPC asks `fetch` before each new handshake: it stats the files and
re-reads them only when one changed. A pair that does not load (a copy half done, a key
of another certificate) keeps the last good one, with one warning per state of the files.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import grpc

from scaler.config import ConfigError, ScalerConfig, TlsFiles, read_tls

log = logging.getLogger("scaler.tls")

# What says a file changed: inode (kubelet's symlink swap), mtime and size (in place).
FileStamp = tuple[int, int, int] | None
Stamps = tuple[FileStamp, ...]


class TlsReloader:
    """Server credentials whose certificate, key and client CA follow their files."""

    def __init__(self, config: ScalerConfig) -> None:
        """Read the files once; ConfigError names the flag whose file is wrong."""
        self._config = config
        self._paths = (config.tls_cert, config.tls_key, config.tls_client_ca)
        self._stamps = self._stat()
        self._initial = _configuration(read_tls(config))
        self._refused: Stamps | None = None
        self._lock = threading.Lock()  # handshakes may ask at once, from gRPC's threads

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._initial,
            self.fetch,  # type: ignore[arg-type]  # the stubs omit None, "no change"
            require_client_authentication=self._config.tls_client_ca is not None,
        )

    def fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """The new configuration when the files changed and load, else None (keep serving).

        Called by gRPC's own threads on every new connection: a few stat calls, and no
        exception may leave it (gRPC would fail the handshake).
        """
        with self._lock:
            return self._fetch()

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        stamps = self._stat()  # before reading: a change during the read is seen next time
        if stamps == self._stamps:
            return None
        try:
            files = read_tls(self._config)
        except (ConfigError, OSError) as exc:
            if stamps != self._refused:
                log.warning("TLS files changed but do not load, serving the previous: %s", exc)
                self._refused = stamps
            return None
        self._stamps = stamps
        log.info("TLS files changed: serving the new certificate")
        return _configuration(files)

    def _stat(self) -> Stamps:
        return tuple(_stamp(path) for path in self._paths)


def _stamp(path: Path | None) -> FileStamp:
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_mtime_ns, info.st_size


def _configuration(files: TlsFiles) -> grpc.ServerCertificateConfiguration:
    return grpc.ssl_server_certificate_configuration(
        [(files.key, files.cert)], root_certificates=files.client_ca
    )
