"""What a trigger may make the scaler poll: hosts by glob, EndpointSlices by namespace."""

from __future__ import annotations

import pytest

from scaler.policy import HostPolicy, namespace_problem

HOSTS = HostPolicy(("*.svc.cluster.local", "127.0.0.1"))


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        pytest.param("rating.edge.svc.cluster.local", True, id="glob"),
        pytest.param("Rating.Edge.SVC.cluster.local.", True, id="case-and-root-dot"),
        pytest.param("127.0.0.1", True, id="literal"),
        pytest.param("169.254.169.254", False, id="metadata-endpoint"),
        pytest.param("svc.cluster.local.evil.com", False, id="suffix-trick"),
    ],
)
def test_hosts(host: str, allowed: bool) -> None:
    assert HOSTS.allows(host) is allowed
    problem = HOSTS.problem(host)
    assert (problem is None) is allowed
    if problem is not None:
        assert host in problem and "--allowed-hosts (*.svc.cluster.local,127.0.0.1)" in problem


@pytest.mark.parametrize(
    ("slices", "namespace", "refused"),
    [
        pytest.param(None, "edge", False, id="not-endpointslices"),
        pytest.param("edge/rating-api", "edge", False, id="own-namespace"),
        pytest.param("payments/rating-api", "edge", True, id="other-namespace"),
    ],
)
def test_endpointslices_only_in_the_scaledobjects_namespace(
    slices: str | None, namespace: str, refused: bool
) -> None:
    problem = namespace_problem(slices, namespace)
    assert (problem is not None) is refused
    if problem is not None:
        assert problem == "namespace 'payments' is not the ScaledObject's ('edge')"
