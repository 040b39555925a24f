"""KEDA's operator and metrics adapter as local processes, with their CRDs and APIService.

KEDA's own certificate management is off (`--enable-cert-rotation=false`, its default):
the harness makes a CA and one certificate (ca.crt, tls.crt, tls.key in the cert dir)
that serves the adapter's external.metrics.k8s.io API and the mTLS between the adapter
and the operator's gRPC metrics service, as KEDA's own certificates would.

The aggregator reaches the adapter through an ExternalName Service (`localhost`), which
it resolves itself; a ClusterIP Service would need a kube-proxy, which is not run here.
It checks the adapter's certificate against the APIService's caBundle for the name
`keda-operator-metrics-apiserver.keda.svc`.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from e2e.cluster import build, pki
from e2e.cluster.control_plane import HOST, ControlPlane
from harness import free_port
from harness.group import Group, component

NAMESPACE = "keda"
ADAPTER_SERVICE = "keda-operator-metrics-apiserver"
OPERATOR_SERVICE = "keda-operator"
APISERVICE = "v1beta1.external.metrics.k8s.io"


@dataclass(frozen=True)
class Keda:
    cert_dir: Path
    operator_probe_port: int
    operator_metrics_port: int
    adapter_port: int


def make_certs(cert_dir: Path) -> pki.Authority:
    cert_dir.mkdir(parents=True, exist_ok=True)
    ca = pki.authority(cert_dir, "keda-ca")
    names = [
        f"{service}.{NAMESPACE}.svc{suffix}"
        for service in (OPERATOR_SERVICE, ADAPTER_SERVICE)
        for suffix in ("", ".cluster.local")
    ]
    pki.issue(
        ca,
        pki.Pair(cert_dir / "tls.crt", cert_dir / "tls.key"),
        common_name="keda",
        hosts=[*names, "localhost", HOST],
    )
    (cert_dir / "ca.crt").write_bytes(ca.pair.cert.read_bytes())
    return ca


def registration(ca: pki.Authority, adapter_port: int) -> str:
    """The namespace, the adapter's Service and its APIService, as one YAML stream."""
    bundle = base64.b64encode(ca.pair.cert.read_bytes()).decode()
    return f"""apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
---
apiVersion: v1
kind: Service
metadata:
  name: {ADAPTER_SERVICE}
  namespace: {NAMESPACE}
spec:
  type: ExternalName
  externalName: localhost
  ports:
    - name: https
      port: {adapter_port}
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: {APISERVICE}
spec:
  group: external.metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  caBundle: {bundle}
  service:
    name: {ADAPTER_SERVICE}
    namespace: {NAMESPACE}
    port: {adapter_port}
"""


def environment(plane: ControlPlane) -> dict[str, str]:
    return dict(os.environ) | {
        "KUBECONFIG": str(plane.kubeconfig),
        "WATCH_NAMESPACE": "",
        "POD_NAMESPACE": NAMESPACE,
        "KEDA_CLUSTER_OBJECT_NAMESPACE": NAMESPACE,
        "OPERATOR_NAME": OPERATOR_SERVICE,
        "KEDA_HTTP_DEFAULT_TIMEOUT": "3000",
    }


def operator_argv(keda: Keda, grpc_port: int) -> list[str]:
    return [
        str(build.binary("keda-operator")),
        "--leader-elect=false",
        "--enable-cert-rotation=false",
        f"--cert-dir={keda.cert_dir}",
        f"--metrics-bind-address={HOST}:{keda.operator_metrics_port}",
        f"--health-probe-bind-address={HOST}:{keda.operator_probe_port}",
        f"--metrics-service-bind-address={HOST}:{grpc_port}",
        "--zap-log-level=info",
        "--zap-encoder=console",
    ]


def adapter_argv(keda: Keda, plane: ControlPlane, grpc_port: int) -> list[str]:
    kubeconfig = str(plane.kubeconfig)
    return [
        str(build.binary("keda-adapter")),
        f"--secure-port={keda.adapter_port}",
        f"--bind-address={HOST}",
        f"--cert-dir={keda.cert_dir}",
        f"--tls-cert-file={keda.cert_dir / 'tls.crt'}",
        f"--tls-private-key-file={keda.cert_dir / 'tls.key'}",
        f"--port={free_port()}",
        f"--metrics-service-address={HOST}:{grpc_port}",
        f"--metrics-service-grpc-authority={OPERATOR_SERVICE}.{NAMESPACE}.svc.cluster.local",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        f"--lister-kubeconfig={kubeconfig}",
        "--zap-log-level=info",
        "--zap-encoder=console",
    ]


def start(procs: Group, plane: ControlPlane, run_dir: Path, log_dir: Path) -> tuple[Keda, str]:
    """Start the operator and the adapter; returns them and the YAML that registers
    the adapter (applied by the caller once the CRDs are in)."""
    cert_dir = run_dir / "keda-certs"
    ca = make_certs(cert_dir)
    keda = Keda(cert_dir, free_port(), free_port(), free_port())
    grpc_port = free_port()
    env = environment(plane)
    procs.start(
        component(
            "keda-operator", operator_argv(keda, grpc_port), log_dir / "keda-operator.log", env
        )
    )
    procs.start(
        component(
            "keda-adapter",
            adapter_argv(keda, plane, grpc_port),
            log_dir / "keda-adapter.log",
            env,
        )
    )
    return keda, registration(ca, keda.adapter_port)


def crd_dir() -> Path:
    return build.keda_source() / "config" / "crd" / "bases"
