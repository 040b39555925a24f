"""The scaler's HTTP port: /metrics, /healthz, /readyz and /v1/targets (what it sees)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from scaler.poller import TargetPoller
from scaler.targets import Targets


def make_app(
    registry: CollectorRegistry, targets: Targets, is_ready: Callable[[], bool]
) -> web.Application:
    async def metrics(_: web.Request) -> web.Response:
        body = generate_latest(registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        ready = is_ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def targets_view(_: web.Request) -> web.Response:
        body = orjson.dumps(describe_targets(targets), option=orjson.OPT_INDENT_2)
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/v1/targets", targets_view)
    return app


def describe_targets(targets: Targets) -> dict[str, Any]:
    users: dict[str, list[dict[str, Any]]] = {}
    for key, use in targets.scaled_objects.items():
        users.setdefault(use.trigger.target.label, []).append(
            {
                "namespace": key.namespace,
                "name": key.name,
                "metric": key.metric,
                "window_s": use.trigger.window_s,
            }
        )
    return {
        "targets": [
            describe_poller(poller) | {"scaled_objects": users.get(poller.target.label, [])}
            for poller in list(targets.pollers.values())
        ]
    }


def describe_poller(poller: TargetPoller) -> dict[str, Any]:
    now = time.monotonic()
    agg = poller.aggregate(poller.fresh_for_s)
    return {
        "target": poller.target.label,
        "fresh": agg.has_data,
        "extrapolated": agg.extrapolated,
        "data_age_s": _finite(poller.data_age_s()),
        "demand_per_s": agg.demand_per_s,
        "fast_demand_per_s": agg.fast_demand_per_s,
        "deficit_tokens": agg.deficit_tokens,
        "pods_total": agg.pods_total,
        "pods_fresh": agg.pods_fresh,
        "pods_failed": agg.pods_failed,
        "discovery_error": poller.discovery_error,
        "problem": None if agg.has_data else poller.failure_summary(),
        "pods": [
            {
                "address": address,
                "pod": series.state.pod if series.state else None,
                "boot_id": series.state.boot_id if series.state else None,
                "fresh": series.state is not None and now - series.last_ok_at <= poller.fresh_for_s,
                "age_s": _finite(now - series.last_ok_at),
                "demand_per_s": series.fast_rate(),
                "tokens": series.state.tokens if series.state else None,
                "capacity": series.state.capacity if series.state else None,
                "refill_per_s": series.state.refill_per_s if series.state else None,
                "restarts": series.restarts,
                "error": series.last_error,
            }
            for address, series in poller.pods.items()
        ],
    }


def _finite(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None
