"""The official client, set up once, and its objects as plain JSON (camelCase) dicts:
the harness reads API objects the way they are written in manifests."""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch

Json = dict[str, Any]


def api_client(kubeconfig: Path, pool_size: int = 16) -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(  # type: ignore[no-untyped-call]
        str(kubeconfig), client_configuration=configuration
    )
    configuration.connection_pool_maxsize = pool_size
    return client.ApiClient(configuration)


def as_json(api: client.ApiClient, obj: object) -> Json:
    value = api.sanitize_for_serialization(obj)  # type: ignore[no-untyped-call]
    if not isinstance(value, dict):
        raise TypeError(f"not an object: {type(obj).__name__}")
    return value


def has_condition(obj: Json, kind: str) -> bool:
    """Whether the object's status has condition `kind` at "True"."""
    status = obj.get("status")
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return any(c.get("type") == kind and c.get("status") == "True" for c in conditions or [])


def list_and_watch(
    api: client.ApiClient, list_call: Callable[..., Any], timeout_s: int
) -> Generator[tuple[str, Json], None, None]:
    """One list (as ADDED events), then a watch from its resourceVersion until the
    server ends it (`timeout_s`) or it expires; the caller loops."""
    listed = as_json(api, list_call())
    for item in listed.get("items") or []:
        yield "ADDED", item
    stream = watch.Watch().stream(  # type: ignore[no-untyped-call]
        list_call,
        resource_version=listed["metadata"]["resourceVersion"],
        timeout_seconds=timeout_s,
    )
    try:
        for event in stream:
            yield str(event["type"]), as_json(api, event["object"])
    except client.ApiException as error:
        if error.status != 410:  # 410: expired, list again
            raise
