"""Run one probe as kubelet does: an HTTP GET (2xx or 3xx passes), a gRPC health check
(SERVING passes), or a TCP connect. Each returns True or False, never raises."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from e2e.podspec import Probe


def http_get(host: str, probe: Probe) -> bool:
    url = f"http://{host}:{probe.port}{probe.path}"
    request = urllib.request.Request(url, headers={"User-Agent": "kube-probe/1.35"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=probe.timeout_s) as response:
            return 200 <= int(response.status) < 400
    except urllib.error.HTTPError as error:
        return 300 <= error.code < 400
    except (OSError, ValueError):
        return False


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def grpc_health(host: str, probe: Probe) -> bool:
    with grpc.insecure_channel(f"{host}:{probe.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            answer = stub.Check(
                health_pb2.HealthCheckRequest(service=probe.service), timeout=probe.timeout_s
            )
        except grpc.RpcError:
            return False
    return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)


def tcp_connect(host: str, probe: Probe) -> bool:
    try:
        with socket.create_connection((host, probe.port), timeout=probe.timeout_s):
            return True
    except OSError:
        return False


def run(host: str, probe: Probe) -> bool:
    if probe.kind == "httpGet":
        return http_get(host, probe)
    if probe.kind == "grpc":
        return grpc_health(host, probe)
    return tcp_connect(host, probe)
