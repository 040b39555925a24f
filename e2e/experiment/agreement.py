"""Whether the two rating-scaler replicas give KEDA the same answer. KEDA balances its
calls round-robin over both (one gRPC connection per address), so each HPA sync may
read either one. Once a second during the step the harness asks both, back to back,
what KEDA asks (GetMetricSpec, then GetMetrics with the ScaledObject's own trigger
metadata), and keeps the relative difference."""

from __future__ import annotations

import statistics
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import grpc

from harness.keda_client import read_metric_sync, scaled_object_ref

CALL_TIMEOUT_S = 2.0
AGREE_WITHIN = 0.02

Addresses = Callable[[], Sequence[tuple[str, int]]]


def spread(values: Sequence[float]) -> float | None:
    """(max - min) / max of one instant's answers; None when all are 0 or fewer than 2."""
    if len(values) < 2 or max(values) <= 0:
        return None
    return (max(values) - min(values)) / max(values)


class Agreement:
    """Samples both replicas once a second from a thread of its own until stopped."""

    def __init__(
        self, replicas: Addresses, namespace: str, name: str, metadata: Mapping[str, str]
    ) -> None:
        self.replicas = replicas
        self.ref = scaled_object_ref(name, namespace, metadata)
        self.spreads: list[float] = []
        self.failed = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def start(self) -> Agreement:
        self.thread.start()
        return self

    def loop(self) -> None:
        while not self.stopped.wait(1.0):
            addresses = [f"{host}:{port}" for host, port in self.replicas()]
            try:
                values = [
                    read_metric_sync(address, self.ref, timeout_s=CALL_TIMEOUT_S)
                    for address in addresses
                ]
            except grpc.RpcError:
                self.failed += 1
                continue
            found = spread(values)
            if found is not None:
                self.spreads.append(found)

    def stop(self) -> dict[str, Any]:
        self.stopped.set()
        self.thread.join(timeout=10)
        return summary(self.spreads, self.failed)


def summary(spreads: Sequence[float], failed: int) -> dict[str, Any]:
    if not spreads:
        return {"samples": 0, "failed": failed}
    within = sum(1 for s in spreads if s <= AGREE_WITHIN)
    return {
        "samples": len(spreads),
        "failed": failed,
        "median_spread_pct": round(100 * statistics.median(spreads), 2),
        "p90_spread_pct": round(100 * sorted(spreads)[int(0.9 * (len(spreads) - 1))], 2),
        "max_spread_pct": round(100 * max(spreads), 2),
        "within_2pct": round(within / len(spreads), 3),
    }
