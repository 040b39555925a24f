"""Names that point at other objects point at something that exists, in every variant.

Kubernetes accepts a Service that selects no pod, a probe on a port nobody
listens on or a ScaledObject whose scalerAddress names another namespace
without a word; these tests are where such mistakes show.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import pytest

from tests.deploy.kube import (
    ACTIVATOR,
    ROOT,
    VARIANTS,
    Obj,
    Variant,
    container_ports,
    containers,
    env_values,
    has_activator,
    label_selector_matches,
    named,
    namespace_of,
    of_kind,
    parse_service_host,
    pod_labels,
    pod_spec,
    render,
    scaled_object_triggers,
    selected_workloads,
    service_selected_workloads,
    workloads,
)

ENV_PORTS = {
    "RATING_API_PORT": "http",
    "RATING_API_ADMIN_PORT": "admin",
    "RATING_SCALER_GRPC_PORT": "grpc",
    "RATING_SCALER_HTTP_PORT": "http",
    "RATING_ACTIVATOR_PORT": "http",
    "RATING_ACTIVATOR_ADMIN_PORT": "admin",
}
METRICS_PORT = {"rating-api": "admin", "rating-scaler": "http", ACTIVATOR: "admin"}
# Where the "Deploy to Kubernetes" instructions live.
DEPLOY_DOCS = (ROOT / "README.md", ROOT / "docs" / "DEPLOY.md")
# What a production install sets, each of which docs/DEPLOY.md must explain.
PRODUCTION_VALUES = (
    "networkPolicies.keda.namespace",
    "networkPolicies.keda.podLabels",
    "networkPolicies.monitoring.namespace",
    "monitoring.labels",
    "scaler.allowedHosts",
    "replicaCount",
    "scaler.replicas",
    "image.digest",
    "namespace.create",
)


def _port_name(workload: Obj, port: int | str) -> str:
    """The container port a Service/NetworkPolicy/probe port resolves to, by name."""
    ports = container_ports(workload)
    if isinstance(port, str):
        assert port in ports, f"{workload['metadata']['name']} has no port named {port!r}"
        return port
    names = [name for name, number in ports.items() if number == port]
    assert names, f"{workload['metadata']['name']} has no container port {port}"
    return names[0]


def _headless_service(objects: list[Obj], name: str, namespace: str) -> Obj:
    services = [
        s
        for s in of_kind(objects, "Service")
        if s["metadata"]["name"] == name and s["metadata"]["namespace"] == namespace
    ]
    assert services, f"no Service {namespace}/{name}"
    (service,) = services
    assert service["spec"].get("clusterIP") == "None", f"Service {name} is not headless"
    return service


def _service_port(service: Obj, number: int) -> Obj:
    ports = [p for p in service["spec"]["ports"] if p["port"] == number]
    assert ports, f"Service {service['metadata']['name']} has no port {number}"
    return dict(ports[0])


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_services_select_pods_and_name_their_ports(variant: Variant) -> None:
    objects = render(variant)
    for service in of_kind(objects, "Service"):
        if public_service_of_the_activator(objects, service):
            continue  # its endpoints are the activator's to write
        selected = service_selected_workloads(objects, service)
        assert selected, f"{variant}: Service {service['metadata']['name']} selects no pods"
        for port in service["spec"]["ports"]:
            for workload in selected:
                _port_name(workload, port.get("targetPort", port["port"]))


def public_service_of_the_activator(objects: list[Obj], service: Obj) -> bool:
    if not has_activator(objects):
        return False
    public = env_values(named(objects, "Deployment", ACTIVATOR))["RATING_ACTIVATOR_PUBLIC_SERVICE"]
    return bool(service["metadata"]["name"] == public)


ZERO_VARIANTS = [v for v in VARIANTS if v.overlay == "zero"]


@pytest.mark.parametrize("variant", ZERO_VARIANTS, ids=str)
def test_the_public_service_goes_where_the_activator_says(variant: Variant) -> None:
    """The public Service has no selector (else the EndpointSlice controller would
    write its slices too); the activator's slice for it lists the ready rating pods
    on --pod-port, or the ready activators on their --port, under one port named
    `http` (what kube-proxy matches with the Service's port name): the rating pods'
    and the activators' public ports must be that port."""
    objects = render(variant)
    activator = named(objects, "Deployment", ACTIVATOR)
    env = env_values(activator)
    public = named(objects, "Service", env["RATING_ACTIVATOR_PUBLIC_SERVICE"])
    assert "selector" not in public["spec"], "the public Service must have no selector"
    assert [p["name"] for p in public["spec"]["ports"]] == ["http"]
    api = named(objects, "Deployment", "rating-api")
    assert container_ports(api)["http"] == int(env["RATING_ACTIVATOR_POD_PORT"])
    assert container_ports(activator)["http"] == int(env["RATING_ACTIVATOR_PORT"])
    assert int(env["RATING_ACTIVATOR_POD_PORT"]) == int(env["RATING_ACTIVATOR_PORT"])
    # The rating pods, from the admin Service's EndpointSlices (their addresses only).
    namespace, _, name = env["RATING_ACTIVATOR_ENDPOINT_SLICES"].partition("/")
    assert namespace == namespace_of(objects)
    pods = _headless_service(objects, name, namespace)
    assert [w["metadata"]["name"] for w in service_selected_workloads(objects, pods)] == [
        "rating-api"
    ]
    # The activators, from their own Service's EndpointSlices.
    own = named(objects, "Service", env["RATING_ACTIVATOR_ACTIVATOR_SERVICE"])
    assert service_selected_workloads(objects, own) == [activator]
    (port,) = own["spec"]["ports"]
    assert _port_name(activator, port["targetPort"]) == "http"


@pytest.mark.parametrize("variant", ZERO_VARIANTS, ids=str)
def test_trigger_activator_is_the_admin_service_of_the_activators(variant: Variant) -> None:
    objects = render(variant)
    for scaled_object, trigger in scaled_object_triggers(objects):
        metadata = trigger["metadata"]
        namespace, _, name = metadata["activator"].partition("/")
        assert namespace == scaled_object["metadata"]["namespace"], f"{variant}: {namespace}"
        service = _headless_service(objects, name, namespace)
        # The scaler reads the activators' admin port: activatorPort, 9092 if absent.
        number = int(metadata.get("activatorPort", "9092"))
        port = _service_port(service, number)
        (activator,) = service_selected_workloads(objects, service)
        assert activator["metadata"]["name"] == ACTIVATOR
        assert _port_name(activator, port["targetPort"]) == "admin"
        assert container_ports(activator)["admin"] == number


@pytest.mark.parametrize("variant", ZERO_VARIANTS, ids=str)
def test_the_activator_may_write_its_slice_and_lease_and_nothing_more(variant: Variant) -> None:
    """Watch EndpointSlices (the rating pods', the activators'), create and replace the
    public Service's one slice, and hold one Lease. Names where Kubernetes allows them:
    not on list, watch and create. No patch, no delete: the writer replaces its one
    slice whole, by one name."""
    objects = render(variant)
    activator = named(objects, "Deployment", ACTIVATOR)
    spec, env = pod_spec(activator), env_values(activator)
    account = spec["serviceAccountName"]
    assert spec.get("automountServiceAccountToken") is True
    assert named(objects, "ServiceAccount", account)
    subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace_of(objects)}
    bindings = [b for b in of_kind(objects, "RoleBinding") if subject in b["subjects"]]
    assert len(bindings) == 1, f"{variant}: {account} should have exactly one RoleBinding"
    role_ref = bindings[0]["roleRef"]
    assert (role_ref["apiGroup"], role_ref["kind"]) == ("rbac.authorization.k8s.io", "Role")
    slice_name = f"{env['RATING_ACTIVATOR_PUBLIC_SERVICE']}-activator"
    assert named(objects, "Role", role_ref["name"])["rules"] == [
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["list", "watch", "create"],
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "resourceNames": [slice_name],
            "verbs": ["get", "update"],
        },
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": [env["RATING_ACTIVATOR_LEASE"]],
            "verbs": ["get", "update"],
        },
    ]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_probes_use_ports_the_container_has(variant: Variant) -> None:
    for workload in workloads(render(variant)):
        ports = container_ports(workload)
        for container in containers(workload):
            for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = container.get(kind)
                if probe is None:
                    continue
                if "grpc" in probe:
                    assert probe["grpc"]["port"] == ports["grpc"], f"{variant}: {kind}"
                for handler in ("httpGet", "tcpSocket"):
                    if handler in probe:
                        _port_name(workload, probe[handler]["port"])


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_processes_listen_where_the_manifests_say(variant: Variant) -> None:
    for workload in workloads(render(variant)):
        ports = container_ports(workload)
        name = workload["metadata"]["name"]
        for container in containers(workload):
            for env in container.get("env", []):
                if env["name"] in ENV_PORTS:
                    expected = ports[ENV_PORTS[env["name"]]]
                    assert int(env["value"]) == expected, f"{variant}: {name} {env['name']}"
        annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
        assert int(annotations["prometheus.io/port"]) == ports[METRICS_PORT[name]]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_scaled_object_targets_the_rating_api_deployment(variant: Variant) -> None:
    objects = render(variant)
    for scaled_object in of_kind(objects, "ScaledObject"):
        ref = scaled_object["spec"]["scaleTargetRef"]
        assert ref.get("kind", "Deployment") == "Deployment"
        assert ref.get("apiVersion", "apps/v1") == "apps/v1"
        target = named(objects, "Deployment", ref["name"])
        assert [c["command"] for c in containers(target)] == [["rating-api"]]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_scaler_address_resolves_to_the_scaler_service(variant: Variant) -> None:
    objects = render(variant)
    for scaled_object, trigger in scaled_object_triggers(objects):
        host, _, port = trigger["metadata"]["scalerAddress"].rpartition(":")
        name, namespace = parse_service_host(host)
        assert namespace == scaled_object["metadata"]["namespace"], f"{variant}: {host}"
        service = _headless_service(objects, name, namespace)
        service_port = _service_port(service, int(port))
        (scaler,) = service_selected_workloads(objects, service)
        assert [c["command"] for c in containers(scaler)] == [["rating-scaler"]]
        assert _port_name(scaler, service_port.get("targetPort", int(port))) == "grpc"


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_trigger_endpoint_slices_are_the_admin_service_of_the_target(variant: Variant) -> None:
    objects = render(variant)
    for scaled_object, trigger in scaled_object_triggers(objects):
        metadata = trigger["metadata"]
        assert "service" not in metadata and "endpoints" not in metadata, f"{variant}"
        namespace, _, name = metadata["endpointSlices"].partition("/")
        assert namespace == scaled_object["metadata"]["namespace"], f"{variant}: {namespace}"
        service = _headless_service(objects, name, namespace)
        service_port = _service_port(service, int(metadata["port"]))
        selected = service_selected_workloads(objects, service)
        target = scaled_object["spec"]["scaleTargetRef"]["name"]
        assert [w["metadata"]["name"] for w in selected] == [target]
        target_port: int | str = service_port.get("targetPort") or service_port["port"]
        assert _port_name(selected[0], target_port) == "admin"


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_the_scaler_may_read_endpoint_slices_in_its_namespace_and_nothing_more(
    variant: Variant,
) -> None:
    objects = render(variant)
    scaler = named(objects, "Deployment", "rating-scaler")
    spec = pod_spec(scaler)
    account = spec["serviceAccountName"]
    assert spec.get("automountServiceAccountToken") is True  # the in-cluster client's token
    assert named(objects, "ServiceAccount", account)
    assert not of_kind(objects, "ClusterRole") and not of_kind(objects, "ClusterRoleBinding")
    bindings = [
        binding
        for binding in of_kind(objects, "RoleBinding")
        if {"kind": "ServiceAccount", "name": account, "namespace": namespace_of(objects)}
        in binding["subjects"]
    ]
    assert len(bindings) == 1, f"{variant}: {account} should have exactly one RoleBinding"
    role_ref = bindings[0]["roleRef"]
    assert (role_ref["apiGroup"], role_ref["kind"]) == ("rbac.authorization.k8s.io", "Role")
    role = named(objects, "Role", role_ref["name"])
    assert role["rules"] == [
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["list", "watch"],
        }
    ]


def _peers(objects: list[Obj], rule: Obj) -> set[str]:
    """Who an ingress rule admits, as readable strings."""
    if not rule.get("from"):
        return {"anyone"}
    peers = set()
    for peer in rule["from"]:
        assert "ipBlock" not in peer, "no ipBlock rules expected"
        parts = []
        if "namespaceSelector" in peer:
            labels = peer["namespaceSelector"].get("matchLabels", {})
            parts.append(f"namespace:{labels['kubernetes.io/metadata.name']}")
            if "podSelector" in peer:  # pods of that namespace, not of ours
                pods = peer["podSelector"]["matchLabels"]
                parts.append("pods:" + ",".join(f"{k}={v}" for k, v in sorted(pods.items())))
        elif "podSelector" in peer:
            selected = selected_workloads(objects, peer["podSelector"])
            assert selected, f"podSelector {peer['podSelector']} selects no pods"
            parts.append("pods:" + ",".join(sorted(w["metadata"]["name"] for w in selected)))
        peers.add("/".join(parts))
    return peers


def _ingress_access(objects: list[Obj]) -> dict[tuple[str, str], set[str]]:
    """(workload, port name) -> the peers that NetworkPolicies admit to it."""
    access: dict[tuple[str, str], set[str]] = {
        (w["metadata"]["name"], port): set()
        for w in workloads(objects)
        for port in container_ports(w)
    }
    for policy in of_kind(objects, "NetworkPolicy"):
        spec = policy["spec"]
        if "Ingress" not in spec.get("policyTypes", ["Ingress"]):
            continue
        selected = selected_workloads(objects, spec["podSelector"]) if spec["podSelector"] else []
        if spec["podSelector"]:
            assert selected, f"NetworkPolicy {policy['metadata']['name']} selects no pods"
        for rule in spec.get("ingress", []):
            peers = _peers(objects, rule)
            for workload in selected:
                ports = [p["port"] for p in rule.get("ports", [])] or list(
                    container_ports(workload)
                )
                for port in ports:
                    access[(workload["metadata"]["name"], _port_name(workload, port))] |= peers
    return access


EXPECTED_ACCESS = {
    ("rating-api", "http"): {"anyone"},
    ("rating-api", "admin"): {"pods:rating-scaler", "namespace:monitoring"},
    ("rating-scaler", "grpc"): {"namespace:keda/pods:app=keda-operator"},
    ("rating-scaler", "http"): {"namespace:monitoring"},
}
# With the activator: clients reach it, it reaches the rating pods' public port (by a
# policy of its own, should rating-api-public ever be narrowed), and the scaler reads
# what it holds.
EXPECTED_ACCESS_WITH_ACTIVATOR = {
    **EXPECTED_ACCESS,
    ("rating-api", "http"): {"anyone", f"pods:{ACTIVATOR}"},
    (ACTIVATOR, "http"): {"anyone"},
    (ACTIVATOR, "admin"): {"pods:rating-scaler", "namespace:monitoring"},
}


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_network_policies_admit_exactly_what_they_mean_to(variant: Variant) -> None:
    objects = render(variant)
    deny = named(objects, "NetworkPolicy", "default-deny-ingress")["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress"]
    assert "ingress" not in deny
    expected = EXPECTED_ACCESS_WITH_ACTIVATOR if has_activator(objects) else EXPECTED_ACCESS
    assert _ingress_access(objects) == expected


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_rating_api_may_open_no_connection_and_the_scaler_any(variant: Variant) -> None:
    """rating-api only answers; the scaler dials the API server and the pods."""
    objects = render(variant)
    egress = {
        w["metadata"]["name"]: [
            p
            for p in of_kind(objects, "NetworkPolicy")
            if "Egress" in p["spec"].get("policyTypes", [])
            and w in selected_workloads(objects, p["spec"]["podSelector"])
        ]
        for w in workloads(objects)
    }
    assert egress["rating-scaler"] == [], "the scaler must reach the API server and the pods"
    (policy,) = egress["rating-api"]
    assert policy["spec"]["policyTypes"] == ["Egress"]
    assert policy["spec"].get("egress", []) == [], "rating-api needs no egress, not even DNS"
    if ACTIVATOR not in egress:
        return
    # The activator dials the rating pods' public port and the API server, nothing else.
    (policy,) = egress[ACTIVATOR]
    assert policy["spec"]["policyTypes"] == ["Egress"]
    to_pods, to_api = policy["spec"]["egress"]
    (peer,) = to_pods["to"]
    assert [w["metadata"]["name"] for w in selected_workloads(objects, peer["podSelector"])] == [
        "rating-api"
    ]
    api = named(objects, "Deployment", "rating-api")
    assert [_port_name(api, p["port"]) for p in to_pods["ports"]] == ["http"]
    assert "to" not in to_api, "the API server is no pod: its ports, anywhere"
    assert sorted(p["port"] for p in to_api["ports"]) == [443, 6443]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_disruption_budgets_and_spread_select_their_own_pods(variant: Variant) -> None:
    objects = render(variant)
    for budget in of_kind(objects, "PodDisruptionBudget"):
        selected = selected_workloads(objects, budget["spec"]["selector"])
        assert [w["metadata"]["name"] for w in selected] == [budget["metadata"]["name"]]
    for workload in workloads(objects):
        selector = workload["spec"]["selector"]
        assert label_selector_matches(selector, pod_labels(workload))
        for constraint in pod_spec(workload).get("topologySpreadConstraints", []):
            selected = selected_workloads(objects, constraint["labelSelector"])
            assert selected == [workload]


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_pod_monitors_scrape_the_metrics_ports(variant: Variant) -> None:
    objects = render(variant)
    scraped = set()
    for monitor in of_kind(objects, "PodMonitor"):
        selected = selected_workloads(objects, monitor["spec"]["selector"])
        assert len(selected) == 1, f"{variant}: {monitor['metadata']['name']}"
        (workload,) = selected
        name = workload["metadata"]["name"]
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert _port_name(workload, endpoint["port"]) == METRICS_PORT[name]
            assert endpoint.get("path", "/metrics") == "/metrics"
        scraped.add(name)
    assert scraped == {w["metadata"]["name"] for w in workloads(objects)}


@pytest.mark.parametrize("variant", [v for v in VARIANTS if "mtls" in v.components], ids=str)
def test_mtls_wiring(variant: Variant) -> None:
    objects = render(variant)
    secrets: set[str] = set()
    for scaled_object, trigger in scaled_object_triggers(objects):
        ref = trigger["authenticationRef"]
        assert ref.get("kind", "TriggerAuthentication") == "TriggerAuthentication"
        auth = named(objects, "TriggerAuthentication", ref["name"])
        assert auth["metadata"]["namespace"] == scaled_object["metadata"]["namespace"]
        parameters = {r["parameter"]: r for r in auth["spec"]["secretTargetRef"]}
        assert set(parameters) == {"caCert", "tlsClientCert", "tlsClientKey"}
        secrets |= {r["name"] for r in parameters.values()}
    scaler = named(objects, "Deployment", "rating-scaler")
    (container,) = containers(scaler)
    volumes = {v["name"]: v for v in pod_spec(scaler)["volumes"]}
    secret_mounts = {
        PurePosixPath(m["mountPath"]): volumes[m["name"]]["secret"]["secretName"]
        for m in container["volumeMounts"]
        if "secret" in volumes[m["name"]]
    }
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    for flag in ("RATING_SCALER_TLS_CERT", "RATING_SCALER_TLS_KEY", "RATING_SCALER_TLS_CLIENT_CA"):
        path = PurePosixPath(env[flag])
        assert path.parent in secret_mounts, f"{flag}={path} is not in a mounted secret"
        secrets.add(secret_mounts[path.parent])
    assert len(secrets) == 2, f"one secret for the scaler, one for KEDA: {secrets}"
    docs = [path for path in DEPLOY_DOCS if path.exists()]
    assert docs, f"none of {DEPLOY_DOCS} exists"
    text = "\n".join(path.read_text() for path in docs)
    for secret in secrets:
        assert secret in text, f"the deploy docs do not say how to create {secret}"


def cited_docs() -> set[str]:
    """docs/ files named in the manifests, the chart and the docs themselves."""
    sources = [*(ROOT / "manifests").rglob("*.yaml"), *(ROOT / "charts").rglob("*")]
    sources += [*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]
    texts = (path.read_text() for path in sources if path.is_file())
    return {m for text in texts for m in re.findall(r"docs/[\w.-]+\.(?:md|yaml)", text)}


def test_every_cited_doc_exists() -> None:
    cited = cited_docs()
    assert "docs/DEPLOY.md" in cited
    missing = sorted(name for name in cited if not (ROOT / name).is_file())
    assert missing == [], f"cited but missing: {missing}"


def test_the_deploy_doc_covers_what_a_production_install_sets() -> None:
    text = (ROOT / "docs" / "DEPLOY.md").read_text()
    for value in PRODUCTION_VALUES:
        assert f"`{value}`" in text or f"{value}:" in text, value
    for topic in ("--create-namespace", "helm upgrade", "docs/kube-state-metrics.yaml"):
        assert topic in text, topic
    rotation = text[text.index("## Certificates and their rotation") :]
    assert "no restart" in rotation.lower()
    assert "rating-scaler-tls" in rotation and "rating-scaler-client-tls" in rotation
