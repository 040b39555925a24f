"""Alerts and the dashboard: valid PromQL, alerts that fire when they should, and
metric names that the running processes (or a documented outside source) expose."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.kube import BASE, DATA, OVERLAYS, ROOT, VARIANTS, Obj, Variant, of_kind, render
from tests.procs import Proc, start_rating_api, start_scaler

# Series that neither rating-api nor rating-scaler exposes, each with its source.
# Keep it to what the rules and the dashboard use: a test fails on unused entries.
EXTERNAL_METRICS = {
    # KEDA operator, v2.17 and later (pkg/metricscollector/prommetrics.go)
    "keda_scaler_detail_errors_total": "KEDA",
    "keda_scaler_metrics_value": "KEDA",
    # kube-state-metrics with docs/kube-state-metrics.yaml (custom resource state)
    "kube_customresource_scaledobject_status_condition": "kube-state-metrics + docs",
    # Prometheus itself, per scrape target
    "up": "Prometheus",
    # kube-state-metrics (docs/metrics/workload/*.md)
    "kube_deployment_spec_replicas": "kube-state-metrics",
    "kube_deployment_status_replicas": "kube-state-metrics",
    "kube_deployment_status_replicas_available": "kube-state-metrics",
    "kube_horizontalpodautoscaler_spec_max_replicas": "kube-state-metrics",
    "kube_horizontalpodautoscaler_status_current_replicas": "kube-state-metrics",
    "kube_horizontalpodautoscaler_status_desired_replicas": "kube-state-metrics",
}

ALERTS = {
    "RatingApiBucketsExhausted",
    "RatingApiHighRejectRatio",
    "RatingApiAtMaxReplicasRefusing",
    "RatingScalerDataStale",
    "RatingScalerPodsFailing",
    "RatingScalerUnavailable",
    "RatingScalerDown",
    "RatingApiKedaFallback",
    "RatingApiKedaScalerErrors",
}

PANELS = {
    "Token bucket fill per pod",
    "Demand against capacity",
    "Desired against actual replicas",
    "429 rate",
    "Request latency p99",
    "Scaler poll latency",
    "Scaler errors",
}

GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}

PROMQL_KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring",
    "group_left", "group_right", "bool", "offset", "inf", "nan",
}  # fmt: skip


# --- reading the manifests -------------------------------------------------


def rule_groups(variant: Variant = BASE) -> list[Obj]:
    (rule,) = of_kind(render(variant), "PrometheusRule")
    return list(rule["spec"]["groups"])


def rules(variant: Variant = BASE) -> list[Obj]:
    return [rule for group in rule_groups(variant) for rule in group["rules"]]


def dashboard(variant: Variant = BASE) -> Obj:
    for config_map in of_kind(render(variant), "ConfigMap"):
        if config_map["metadata"].get("labels", {}).get("grafana_dashboard") == "1":
            (text,) = config_map["data"].values()
            return dict(json.loads(text))
    raise AssertionError("no dashboard ConfigMap")


def panels(board: Obj) -> Iterator[Obj]:
    for panel in board["panels"]:
        yield from panel.get("panels", [])
        yield panel


def dashboard_exprs(board: Obj) -> list[str]:
    return [t["expr"] for p in panels(board) for t in p.get("targets", []) if "expr" in t]


def all_exprs(variant: Variant = BASE) -> list[str]:
    return [rule["expr"] for rule in rules(variant)] + dashboard_exprs(dashboard(variant))


# --- PromQL ------------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions,
    aggregations, keywords, label names or Grafana variables."""
    expr = re.sub(r"\$\{?\w+\}?", " ", expr)
    expr = re.sub(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`', " ", expr)
    expr = re.sub(r"\{[^}]*\}", " ", expr)
    expr = re.sub(r"\[[^\]]*\]", " ", expr)
    expr = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)
    names = set()
    for match in re.finditer(r"(?<![\w:.])[a-zA-Z_:][a-zA-Z0-9_:]*", expr):
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        if match.group().lower() not in PROMQL_KEYWORDS:
            names.add(match.group())
    return names


def label_matchers(expr: str) -> list[tuple[str, str]]:
    """(label, value) of every equality matcher in an expression."""
    return re.findall(r'([a-zA-Z_]\w*)\s*=\s*"([^"]*)"', expr)


def for_promtool(expr: str) -> str:
    """A dashboard query as plain PromQL: Grafana's variables replaced by values."""
    expr = re.sub(r"\$\{?__(?:rate_)?interval\}?|\$\{?__range\}?", "1m", expr)
    return re.sub(r"\$\{?(\w+)\}?", r"\1", expr)


def promtool(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    path = shutil.which("promtool")
    assert path, "promtool is missing: `make system-deps` installs it from Debian"
    return subprocess.run(
        [path, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("up", {"up"}),
        ('sum by (le) (rate(x_bucket{a="b", c=~"d|e"}[5m]))', {"x_bucket"}),
        ("histogram_quantile(0.99, sum(rate(x[$__rate_interval])) by (le))", {"x"}),
        ("a / on (namespace) group_left (pod) b > bool 0.5", {"a", "b"}),
        ('max(a{ns="$namespace"}) or vector(0)', {"a"}),
        ("sum without (instance) (a) unless b offset 5m", {"a", "b"}),
        ('label_replace(a, "dst", "$1", "src", "(.*)")', {"a"}),
        ("count(a == 1e3) and on () c:recorded:rate5m", {"a", "c:recorded:rate5m"}),
    ],
    ids=[
        "bare",
        "matchers",
        "grafana-var",
        "vector-matching",
        "function",
        "offset",
        "strings",
        "num",
    ],
)
def test_metric_name_extraction(expr: str, expected: set[str]) -> None:
    assert metric_names(expr) == expected


# --- alerts ------------------------------------------------------------------


def test_promtool_checks_the_rules(tmp_path: Path) -> None:
    for variant in (BASE, *OVERLAYS):
        path = tmp_path / f"{variant}.yaml"
        path.write_text(yaml.safe_dump({"groups": rule_groups(variant)}, sort_keys=False))
        result = promtool("check", "rules", path.name, cwd=tmp_path)
        assert result.returncode == 0, f"{variant}:\n{result.stdout}{result.stderr}"


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    groups = rule_groups()
    groups[0]["rules"][0]["expr"] = "sum by (namespace) (rate(openclaw_rating_api_requests_total))"
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    assert promtool("check", "rules", "rules.yaml", cwd=tmp_path).returncode != 0


def _alerts_fire_as_designed(tmp_path: Path, groups: list[Obj]) -> subprocess.CompletedProcess[str]:
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)  # their text is not what these tests are about
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
    shutil.copy(DATA / "alerts-test.yaml", tmp_path / "alerts-test.yaml")
    return promtool("test", "rules", "alerts-test.yaml", cwd=tmp_path)


def test_alerts_fire_as_designed(tmp_path: Path) -> None:
    result = _alerts_fire_as_designed(tmp_path, rule_groups())
    assert result.returncode == 0, result.stdout + result.stderr
    tested = set(re.findall(r"alertname: (\w+)", (DATA / "alerts-test.yaml").read_text()))
    assert tested == ALERTS


def test_alert_tests_notice_a_changed_threshold(tmp_path: Path) -> None:
    groups = rule_groups()
    for rule in (r for g in groups for r in g["rules"]):
        if rule.get("alert") == "RatingApiHighRejectRatio":
            rule["expr"] = rule["expr"].replace("> 0.05", "> 0.5")
    assert _alerts_fire_as_designed(tmp_path, groups).returncode != 0


def test_alerts_have_severity_summary_and_runbook() -> None:
    alerts = [rule for rule in rules() if "alert" in rule]
    assert {rule["alert"] for rule in alerts} == ALERTS
    assert len(alerts) == len(ALERTS), "duplicate alert names"
    for rule in alerts:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        for annotation in ("summary", "runbook"):
            text = rule.get("annotations", {}).get(annotation, "")
            assert len(text.strip()) > 20, f"{rule['alert']}: {annotation}"


KSM_CONFIG = ROOT / "docs" / "kube-state-metrics.yaml"


def ksm_series() -> dict[str, set[str]]:
    """Metric name -> label names of what docs/kube-state-metrics.yaml makes
    kube-state-metrics export for KEDA's ScaledObjects."""
    config = yaml.safe_load(KSM_CONFIG.read_text())
    assert config["kind"] == "CustomResourceStateMetrics"
    series: dict[str, set[str]] = {}
    for resource in config["spec"]["resources"]:
        kind = resource["groupVersionKind"]
        if (kind["group"], kind["kind"]) != ("keda.sh", "ScaledObject"):
            continue
        prefix = resource.get("metricNamePrefix", "kube_customresource")
        common = set(resource.get("labelsFromPath", {}))
        for metric in resource["metrics"]:
            each = metric["each"]
            own = set(each[each["type"].lower()].get("labelsFromPath", {}))
            series[f"{prefix}_{metric['name']}"] = common | own
    return series


def test_the_fallback_alert_reads_what_the_documented_kube_state_metrics_config_exports() -> None:
    (rule,) = [r for r in rules() if r.get("alert") == "RatingApiKedaFallback"]
    exported = ksm_series()
    (name,) = metric_names(rule["expr"])
    assert name in exported, f"{name} is not what {KSM_CONFIG.name} exports: {sorted(exported)}"
    used = {label for label, _ in label_matchers(rule["expr"])}
    used |= set(re.findall(r"by \(([^)]*)\)", rule["expr"])[0].replace(" ", "").split(","))
    assert used <= exported[name], f"labels {used - exported[name]} are not exported"
    assert ("type", "Fallback") in label_matchers(rule["expr"])


def test_one_kind_of_signal_per_keda_alert() -> None:
    """Fallback is KEDA's condition, not its error counter (which goes flat while it
    falls back); errors are a warning of their own."""
    by_name = {r["alert"]: r for r in rules() if "alert" in r}
    fallback, errors = by_name["RatingApiKedaFallback"], by_name["RatingApiKedaScalerErrors"]
    assert "keda_scaler_detail_errors_total" not in metric_names(fallback["expr"])
    assert fallback["labels"]["severity"] == "critical"
    assert errors["labels"]["severity"] == "warning"
    assert errors["for"] in ("5m", "10m", "15m")


# --- dashboard ---------------------------------------------------------------


def test_dashboard_has_the_panels_the_team_needs() -> None:
    board = dashboard()
    titles = {panel["title"] for panel in panels(board)}
    assert titles >= PANELS, f"missing {PANELS - titles}"
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids)), "duplicate panel ids"
    desired = next(p for p in panels(board) if p["title"] == "Desired against actual replicas")
    names = set().union(*(metric_names(t["expr"]) for t in desired["targets"]))
    assert {"kube_horizontalpodautoscaler_status_desired_replicas"} <= names
    assert {"kube_deployment_status_replicas"} <= names


def test_dashboard_queries_use_its_data_source_and_variables() -> None:
    board = dashboard()
    variables = {v["name"] for v in board["templating"]["list"]} | GRAFANA_BUILTINS
    assert "datasource" in variables
    for panel in panels(board):
        refs = [t["refId"] for t in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]
        for holder in (panel, *panel.get("targets", [])):
            assert holder["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel.get("targets", []):
            used = set(re.findall(r"\$\{?(\w+)\}?", target["expr"]))
            assert used <= variables, f"{panel['title']}: undefined {used - variables}"


def test_every_dashboard_query_keeps_to_the_chosen_namespace() -> None:
    """Each series a panel reads is filtered by $namespace: as `namespace`, or as
    `exported_namespace` for KEDA scraped without honorLabels."""
    matcher = re.compile(r'(?<![\w])(exported_)?namespace\s*=\s*"\$namespace"')
    for panel in panels(dashboard()):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name in metric_names(expr):
                for selector in re.findall(rf"(?<![\w:]){name}\s*(\{{[^}}]*\}})?", expr):
                    assert matcher.search(selector), f"{panel['title']}: {name} in {expr}"


def test_promtool_parses_every_dashboard_query(tmp_path: Path) -> None:
    records = [
        {"record": f"dashboard:query_{index}", "expr": for_promtool(expr)}
        for index, expr in enumerate(dashboard_exprs(dashboard()))
    ]
    assert records
    (tmp_path / "dashboard.yaml").write_text(
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]})
    )
    result = promtool("check", "rules", "dashboard.yaml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("variant", VARIANTS, ids=str)
def test_queries_name_the_objects_the_manifests_create(variant: Variant) -> None:
    objects = render(variant)
    (scaled_object,) = of_kind(objects, "ScaledObject")
    so_name = scaled_object["metadata"]["name"]
    expected = {
        "horizontalpodautoscaler": {f"keda-hpa-{so_name}"},
        "scaledObject": {so_name},
        "scaledobject": {so_name},
        "scaled_object": {so_name},
        "deployment": {d["metadata"]["name"] for d in of_kind(objects, "Deployment")},
    }
    for expr in all_exprs(variant):
        for label, value in label_matchers(expr):
            if label in expected:
                assert value in expected[label], f"{variant}: {label}={value!r} in {expr}"


# --- metric names against the running processes ------------------------------


def exposed_metric_names(exposition: str) -> set[str]:
    """Every series name a /metrics page can produce, from its # TYPE lines and samples
    (labelled metrics without children still have their # TYPE line)."""
    suffixes = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names |= {name, *(name + suffix for suffix in suffixes.get(kind, ()))}
        elif line and not line.startswith("#"):
            match = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line)
            assert match, line
            names.add(match.group())
    return names


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


@pytest.fixture
def running_services(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A real rating-api and a real rating-scaler on loopback; their /metrics pages."""
    started: list[Proc] = []
    try:
        api = start_rating_api(tmp_path / "logs")
        started.append(api)
        scaler = start_scaler(tmp_path / "logs")
        started.append(scaler)
        yield {
            "rating-api": fetch(api.url("admin", "/metrics")),
            "rating-scaler": fetch(scaler.url("http", "/metrics")),
        }
    finally:
        for proc in started:
            proc.stop()


def test_every_metric_name_exists(running_services: dict[str, str]) -> None:
    exposed: dict[str, set[str]] = {
        service: exposed_metric_names(text) for service, text in running_services.items()
    }
    assert "openclaw_rating_api_token_bucket_fill" in exposed["rating-api"]
    assert "openclaw_rating_scaler_poll_duration_seconds_bucket" in exposed["rating-scaler"]
    known = set(EXTERNAL_METRICS).union(*exposed.values())
    unknown: dict[str, Any] = {}
    for expr in all_exprs():
        for name in metric_names(expr) - known:
            unknown.setdefault(name, expr)
    assert not unknown, f"metric names no process exposes: {unknown}"


def test_every_external_metric_is_used() -> None:
    used = set().union(*(metric_names(expr) for expr in all_exprs()))
    assert set(EXTERNAL_METRICS) <= used, f"unused: {set(EXTERNAL_METRICS) - used}"
