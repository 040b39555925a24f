"""The scaler's HTTP port: /metrics, /healthz, /readyz and /v1/targets (what it sees)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from scaler.readmodel import ActivatorReading, PodView, TargetView
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
            describe_view(view) | {"scaled_objects": users.get(view.target.label, [])}
            for view in list(targets.views.values())
        ]
    }


def describe_view(view: TargetView) -> dict[str, Any]:
    snap = view.snapshot()
    agg = snap.aggregate
    return {
        "target": snap.target.label,
        "fresh": agg.has_data,
        "extrapolated": agg.extrapolated,
        "data_age_s": _finite(snap.data_age_s),
        "window_s": snap.window_s,
        "demand_per_s": agg.demand_per_s,
        "fast_demand_per_s": agg.fast_demand_per_s,
        "deficit_tokens": agg.deficit_tokens,
        "pods_total": agg.pods_total,
        "pods_fresh": agg.pods_fresh,
        "pods_failed": agg.pods_failed,
        "discovery_error": snap.discovery_error,
        "problem": snap.problem,
        "pods": [describe_pod(pod) for pod in snap.pods],
        "held_requests": agg.held_requests,
        "held_demand_per_s": agg.held_demand_per_s,
        "activators": [describe_activator(one, snap.taken_at) for one in snap.activators],
    }


def describe_activator(activator: ActivatorReading, now: float) -> dict[str, Any]:
    state = activator.state
    return {
        "address": activator.address,
        "activator": state.activator if state else None,
        "held": state.held if state else None,
        "oldest_held_s": state.oldest_held_s if state else None,
        "age_s": _finite(now - activator.last_ok_at),
        "error": activator.error,
    }


def describe_pod(pod: PodView) -> dict[str, Any]:
    state = pod.state
    return {
        "address": pod.address,
        "pod": state.pod if state else None,
        "boot_id": state.boot_id if state else None,
        "fresh": pod.fresh,
        "age_s": _finite(pod.age_s),
        "demand_per_s": pod.demand_per_s,
        "tokens": state.tokens if state else None,
        "capacity": state.capacity if state else None,
        "refill_per_s": state.refill_per_s if state else None,
        "restarts": pod.restarts,
        "error": pod.error,
    }


def _finite(value: float) -> float | None:
    return round(value, 3) if math.isfinite(value) else None
