"""What the HPA that KEDA made really holds, beside what its ScaledObject asks for:
the behavior (tolerances included, which the API server drops when the
HPAConfigurableTolerance gate is off) and the tolerances the controller applied at
its last sync (from its log, see `e2e.cluster.hpa_syncs`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from e2e.cluster import hpa_syncs
from e2e.cluster.observe import quantity
from e2e.cluster.up import Cluster


def same(wanted: Any, found: Any) -> bool:
    """Whether every field of `wanted` is in `found` with the same value; quantities
    compare by value (the API server writes 0.05 as 50m)."""
    if isinstance(wanted, dict):
        return isinstance(found, dict) and all(same(v, found.get(k)) for k, v in wanted.items())
    if isinstance(wanted, list):
        return (
            isinstance(found, list) and len(wanted) == len(found) and all(map(same, wanted, found))
        )
    scalars = (str, int, float)
    if isinstance(wanted, scalars) and isinstance(found, scalars) and wanted != found:
        try:
            return quantity(str(wanted)) == quantity(str(found))
        except (ValueError, IndexError):
            return False
    return bool(wanted == found)


def hpa_settings(
    cluster: Cluster, namespace: str, syncs: Sequence[hpa_syncs.Sync]
) -> dict[str, Any]:
    scaled = cluster.observer.scaled_object(namespace).get("spec") or {}
    wanted = ((scaled.get("advanced") or {}).get("horizontalPodAutoscalerConfig") or {}).get(
        "behavior"
    ) or {}
    found = (cluster.observer.hpa_object(namespace) or {}).get("spec", {}).get("behavior") or {}
    mine = hpa_syncs.of(syncs, namespace)
    return {
        "behavior_as_scaled_object": same(wanted, found),
        "scale_up_tolerance": (found.get("scaleUp") or {}).get("tolerance"),
        "scale_down_tolerance": (found.get("scaleDown") or {}).get("tolerance"),
        "scale_up_policies": (found.get("scaleUp") or {}).get("policies"),
        "tolerances_applied": mine[-1].tolerances if mine else None,
    }
