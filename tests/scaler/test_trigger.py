from __future__ import annotations

import pytest

from scaler.config import DEFAULT_HOST_POLICY
from scaler.policy import HostPolicy
from scaler.target_key import TargetKey
from scaler.trigger import MetadataError, parse_trigger

SCALER_ADDRESS = {"scalerAddress": "rating-scaler.edge.svc.cluster.local:6000"}


def test_defaults_from_a_minimal_keda_trigger() -> None:
    trigger = parse_trigger(
        {**SCALER_ADDRESS, "service": "rating-api-admin.edge.svc.cluster.local"},
        DEFAULT_HOST_POLICY,
    )
    assert trigger.target == TargetKey("rating-api-admin.edge.svc.cluster.local", (), 9090)
    assert (trigger.metric, trigger.target_utilization, trigger.window_s) == ("demand", 0.8, 5.0)
    assert trigger.target_per_pod is None and trigger.activation_demand == 0.0


def test_every_key_parsed() -> None:
    trigger = parse_trigger(
        {
            "endpoints": "127.0.0.1:9091, localhost:9092,127.0.0.1:9091",
            "metric": "deficit",
            "targetUtilization": "0.5",
            "targetPerPod": "25",
            "activationDemand": "3.5",
            "window": "2",
            "someFutureKey": "ignored",
        },
        DEFAULT_HOST_POLICY,
    )
    assert trigger.target.endpoints == (("127.0.0.1", 9091), ("localhost", 9092))
    assert trigger.metric == "deficit"
    assert (trigger.target_utilization, trigger.target_per_pod) == (0.5, 25.0)
    assert (trigger.activation_demand, trigger.window_s) == (3.5, 2.0)


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        pytest.param({}, ("off", 30.0), id="default"),
        pytest.param({"forecast": "recurring"}, ("recurring", 30.0), id="recurring"),
        pytest.param({"forecast": "off", "forecastLead": "600"}, ("off", 600.0), id="off"),
        pytest.param(
            {"forecast": "recurring", "forecastLead": "12.5"}, ("recurring", 12.5), id="decimal"
        ),
        pytest.param({"forecast": "recurring", "forecastLead": "1"}, ("recurring", 1.0), id="1"),
    ],
)
def test_forecast_keys(metadata: dict[str, str], expected: tuple[str, float]) -> None:
    trigger = parse_trigger({"endpoints": "127.0.0.1:1", **metadata}, DEFAULT_HOST_POLICY)
    assert (trigger.forecast, trigger.forecast_lead_s) == expected


def test_endpoints_without_port_use_the_port_key_and_ipv6_works() -> None:
    trigger = parse_trigger(
        {"endpoints": "127.0.0.1,[::1]:7000", "port": "9191"}, HostPolicy(("*",))
    )
    assert trigger.target.endpoints == (("127.0.0.1", 9191), ("::1", 7000))
    assert trigger.target.label == "127.0.0.1:9191,[::1]:7000"


def test_endpoint_slices_name_a_service_in_a_namespace() -> None:
    trigger = parse_trigger(
        {"endpointSlices": " edge/rating-api-admin ", "port": "9091"}, DEFAULT_HOST_POLICY
    )
    assert trigger.target == TargetKey(None, (), 9091, endpoint_slices="edge/rating-api-admin")
    assert trigger.target.label == "edge/rating-api-admin:9091"


def test_same_pods_give_the_same_target_whatever_the_other_keys() -> None:
    first = parse_trigger(
        {"endpoints": "127.0.0.1:1,127.0.0.1:2", "window": "2"}, DEFAULT_HOST_POLICY
    )
    second = parse_trigger(
        {"endpoints": "127.0.0.1:2, 127.0.0.1:1", "metric": "deficit"}, DEFAULT_HOST_POLICY
    )
    assert first.target == second.target


@pytest.mark.parametrize(
    ("metadata", "key"),
    [
        pytest.param({}, "endpointSlices", id="no-target"),
        pytest.param({"endpointSlices": "edge"}, "endpointSlices", id="slices-no-service"),
        pytest.param({"endpointSlices": "Edge/api"}, "endpointSlices", id="slices-upper-case"),
        pytest.param({"endpointSlices": "edge/api/x"}, "endpointSlices", id="slices-three-parts"),
        pytest.param({"endpointSlices": "edge/9api"}, "endpointSlices", id="slices-service-digit"),
        pytest.param(
            {"endpointSlices": "edge/api", "service": "a.svc.cluster.local"},
            "service",
            id="slices-and-service",
        ),
        pytest.param(
            {"service": "a.svc.cluster.local", "endpoints": "127.0.0.1:1"}, "endpoints", id="both"
        ),
        pytest.param({"service": "bad_name!.svc.cluster.local"}, "service", id="service-not-dns"),
        pytest.param({"service": "metadata.google.internal"}, "service", id="service-not-allowed"),
        pytest.param({"endpoints": "169.254.169.254:80"}, "endpoints", id="endpoint-not-allowed"),
        pytest.param({"endpoints": "127.0.0.1:99999"}, "endpoints", id="endpoint-port-range"),
        pytest.param({"endpoints": "127.0.0.1:http"}, "endpoints", id="endpoint-port-name"),
        pytest.param({"endpoints": "127.0.0.1:1", "port": "0"}, "port", id="port-zero"),
        pytest.param({"endpoints": "127.0.0.1:1", "port": "nine"}, "port", id="port-text"),
        pytest.param({"endpoints": "127.0.0.1:1", "metric": "fill"}, "metric", id="metric-unknown"),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "targetUtilization": "0"},
            "targetUtilization",
            id="util-zero",
        ),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "targetUtilization": "1.5"},
            "targetUtilization",
            id="util-high",
        ),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "targetUtilization": "nan"},
            "targetUtilization",
            id="util-nan",
        ),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "targetPerPod": "-5"},
            "targetPerPod",
            id="per-pod-negative",
        ),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "targetPerPod": "inf"}, "targetPerPod", id="per-pod-inf"
        ),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "targetPerPod": "1e308"}, "targetPerPod", id="per-pod-huge"
        ),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "activationDemand": "-1"},
            "activationDemand",
            id="activation-neg",
        ),
        pytest.param({"endpoints": "127.0.0.1:1", "window": "0"}, "window", id="window-zero"),
        pytest.param({"endpoints": "127.0.0.1:1", "window": "301"}, "window", id="window-too-long"),
        pytest.param({"endpoints": "127.0.0.1:1", "window": "5s"}, "window", id="window-unit"),
        pytest.param({"endpoints": "127.0.0.1:1", "forecast": "maybe"}, "forecast", id="forecast"),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "forecast": "recurring", "metric": "deficit"},
            "forecast",
            id="forecast-deficit",
        ),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "forecastLead": "0"}, "forecastLead", id="lead-0"
        ),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "forecastLead": "1e9"}, "forecastLead", id="lead-1e9"
        ),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "forecastLead": "\u0663\u0660"},
            "forecastLead",
            id="lead-arabic-indic",
        ),
        pytest.param(
            {"endpoints": "127.0.0.1:1", "forecastLead": "601"}, "forecastLead", id="lead-601"
        ),
    ],
)
def test_bad_metadata_names_the_key(metadata: dict[str, str], key: str) -> None:
    with pytest.raises(MetadataError) as caught:
        parse_trigger(metadata, DEFAULT_HOST_POLICY)
    assert caught.value.key == key
    assert repr(key) in str(caught.value)


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("rating-api-admin.edge.svc.cluster.local", True),
        ("RATING.edge.svc.cluster.local.", True),
        ("localhost", True),
        ("127.0.0.1", True),
        ("127.0.0.2", False),
        ("evil.example.com", False),
        ("svc.cluster.local.evil.example.com", False),
    ],
)
def test_default_host_policy(host: str, allowed: bool) -> None:
    assert DEFAULT_HOST_POLICY.allows(host) is allowed
