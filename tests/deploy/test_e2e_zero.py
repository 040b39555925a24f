"""The overlay `make e2e` runs its fleet at zero from (manifests/overlays/e2e-zero):
the checks of the zero overlay hold for it too, and it says what
e2e/experiment/zero_fleet.py expects."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from e2e.experiment import zero_fleet as zero
from tests.deploy import test_crossrefs as crossrefs
from tests.deploy import test_render as rendering
from tests.deploy import test_schemas as schemas
from tests.deploy.kube import (
    ACTIVATOR,
    Variant,
    container_ports,
    containers,
    named,
    namespace_of,
    of_kind,
    pod_spec,
    render,
)

E2E_ZERO = Variant("e2e-zero", "e2e-zero")

CHECKS: list[Callable[[Variant], None]] = [
    schemas.test_kubernetes_objects_validate,
    schemas.test_keda_objects_validate,
    rendering.test_everything_lives_in_the_one_namespace,
    rendering.test_one_image_one_command_per_deployment,
    rendering.test_every_pod_runs_locked_down,
    rendering.test_scale_from_zero_only_with_the_activator,
    rendering.test_target_per_pod_is_the_pods_refill_times_the_utilization,
    crossrefs.test_services_select_pods_and_name_their_ports,
    crossrefs.test_the_public_service_goes_where_the_activator_says,
    crossrefs.test_trigger_activator_is_the_admin_service_of_the_activators,
    crossrefs.test_the_activator_may_write_its_slice_and_lease_and_nothing_more,
    crossrefs.test_probes_use_ports_the_container_has,
    crossrefs.test_scaled_object_targets_the_rating_api_deployment,
    crossrefs.test_scaler_address_resolves_to_the_scaler_service,
    crossrefs.test_trigger_endpoint_slices_are_the_admin_service_of_the_target,
    crossrefs.test_the_scaler_may_read_endpoint_slices_in_its_namespace_and_nothing_more,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_zero_overlay_checks_hold(check: Callable[[Variant], None]) -> None:
    check(E2E_ZERO)


def test_the_overlay_is_what_the_run_expects() -> None:
    """Its own namespace, a short cooldown (the run waits for zero three times), a
    fallback (idle must stay idle with it), the activator's admin port where the run
    reads its counters, and a hold timeout below the run's request timeout."""
    objects = render(E2E_ZERO)
    assert namespace_of(objects) == zero.NAMESPACE
    (scaled_object,) = of_kind(objects, "ScaledObject")
    spec = scaled_object["spec"]
    assert spec["minReplicaCount"] == 0
    assert spec["cooldownPeriod"] <= 30 and spec["pollingInterval"] == 5
    assert spec["fallback"]["failureThreshold"] == 3 and spec["fallback"]["replicas"] > 0
    activator = named(objects, "Deployment", ACTIVATOR)
    assert container_ports(activator)["admin"] == zero.ADMIN_PORT
    (container,) = containers(activator)
    hold = {e["name"]: e.get("value") for e in container["env"]}["RATING_ACTIVATOR_HOLD_TIMEOUT"]
    assert float(hold) < zero.REQUEST_TIMEOUT_S


@pytest.mark.parametrize("name", ["rating-api", "rating-scaler", ACTIVATOR])
def test_each_container_binds_its_pod_ip_and_asks_little_cpu(name: str) -> None:
    """The pods share the run's one network namespace, each on its own address; the
    node's 2 cores are shared by four fleets (as overlays/e2e)."""
    (container,) = pod_spec(named(render(E2E_ZERO), "Deployment", name))["containers"]
    sources = {e["name"]: e.get("valueFrom", {}) for e in container["env"]}
    host = {"rating-api": "RATING_API_HOST", "rating-scaler": "RATING_SCALER_HOST"}.get(
        name, "RATING_ACTIVATOR_HOST"
    )
    assert sources[host] == {"fieldRef": {"fieldPath": "status.podIP"}}
    if name != "rating-scaler":
        assert container["resources"]["requests"]["cpu"] == "25m"
