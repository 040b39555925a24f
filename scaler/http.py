"""The scaler's HTTP port: /metrics, /healthz, /readyz and /v1/targets (what it sees)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from scaler.readmodel import ActivatorReading, ForecastSnapshot, PodView, TargetView
from scaler.targets import ScaledObjectUse, Targets


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
    for key, use in list(targets.scaled_objects.items()):
        users.setdefault(use.trigger.target.label, []).append(
            {
                "namespace": key.namespace,
                "name": key.name,
                "metric": key.metric,
                "window_s": use.trigger.window_s,
                **describe_forecast_use(use, targets.views.get(use.trigger.target)),
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
        "forecast": describe_forecast(snap.forecast),
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


def describe_forecast(forecast: ForecastSnapshot | None) -> dict[str, Any] | None:
    """The target's pattern, when a ScaledObject asked for a forecast."""
    if forecast is None:
        return None
    return {
        "history_s": forecast.history_s,
        "period_s": forecast.period_s,
        "confidence": forecast.confidence,
        "usable": forecast.usable,
        "next_burst_in_s": forecast.next_burst_in_s,
        "state_bytes": forecast.state_bytes,
    }


def describe_forecast_use(use: ScaledObjectUse, view: TargetView | None) -> dict[str, Any]:
    """A ScaledObject's forecast: its lead, and what it expects over it (null: none)."""
    if use.trigger.forecast == "off":
        return {"forecast": "off"}
    found = view.answer(use.trigger) if view is not None else None
    return {
        "forecast": use.trigger.forecast,
        "forecast_lead_s": use.trigger.forecast_lead_s,
        "forecast_per_s": None if found is None else found.forecast_per_s,
        "metric_value": None if found is None else found.metric_value,
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
