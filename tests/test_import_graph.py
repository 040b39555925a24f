"""The import graph of `scaler/`, read from the source with `ast`: data flows one way.

pods -> poller -> read model -> servicer: each scaler module sits in one layer, and
imports only from its own layer (the edges listed in SIDEWAYS) or the layers below.
The RPC side never reaches past the poller to the pods, the pure core imports no I/O
library, and neither `api/` nor `scaler/` imports the tooling around them. Each check
names the offending edge.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCALER = ROOT / "scaler"

# Lowest first. A module may import from its own layer only along SIDEWAYS.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("values", frozenset({"numbers", "target_key", "policy", "pod_errors"})),
    (
        "pure",
        frozenset(
            {"bucket_state", "aggregation", "series", "forecast", "trigger", "scaling", "config"}
        ),
    ),
    # What readers see of a target: written by the poller above it, read by the front.
    ("readmodel", frozenset({"readmodel"})),
    ("pods", frozenset({"pod_client", "discovery", "endpointslices", "discoveries"})),
    ("poller", frozenset({"poller"})),
    ("targets", frozenset({"targets"})),
    ("front", frozenset({"_proto", "rpc_metrics", "servicer", "metrics", "http"})),
    ("wiring", frozenset({"server", "__main__", "__init__"})),
)
SIDEWAYS = frozenset(
    {
        ("aggregation", "bucket_state"),
        ("aggregation", "series"),
        ("series", "bucket_state"),
        ("scaling", "aggregation"),
        ("scaling", "trigger"),
        ("endpointslices", "discovery"),
        ("discoveries", "discovery"),
        ("discoveries", "endpointslices"),
        ("servicer", "_proto"),
        ("servicer", "rpc_metrics"),
        ("metrics", "rpc_metrics"),
        ("__main__", "server"),
    }
)
# Layers above the poller read what it computed; they never reach the pods themselves.
NO_SKIPPING = {"targets": "pods", "front": "pods"}
# Edges the layers alone would allow, but that would put a job in the wrong place.
FORBIDDEN = {
    ("poller", "pod_client"): "the poller takes its fetch as an argument",
    ("trigger", "aggregation"): "parsing metadata needs no demand maths",
    ("config", "trigger"): "flags are not trigger metadata",
    ("metrics", "scaling"): "/metrics reads the view's Answer, it does not compute one",
    ("metrics", "aggregation"): "/metrics reads the view's Answer, it does not compute one",
    ("servicer", "aggregation"): "the RPCs read the view's Answer",
    ("servicer", "poller"): "readers read the target's view, never the poller",
    ("metrics", "poller"): "readers read the target's view, never the poller",
    ("http", "poller"): "readers read the target's view, never the poller",
    ("readmodel", "series"): "the read model holds what the poller published, not pod series",
}
PURE = frozenset(
    {
        "numbers",
        "target_key",
        "policy",
        "pod_errors",
        "bucket_state",
        "aggregation",
        "series",
        "trigger",
        "scaling",
    }
)
IO_LIBRARIES = frozenset(
    {
        "asyncio",
        "grpc",
        "grpc_health",
        "aiohttp",
        "dns",
        "prometheus_client",
        "time",
        "socket",
        "kubernetes_asyncio",
        "yarl",
        "uvloop",
    }
)
TOOLING = frozenset({"demo", "e2e", "bench", "soak", "harness", "tests"})


def imports_in(path: Path) -> set[str]:
    """Every module a file imports, at any depth in it, as dotted names."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def scaler_modules() -> dict[str, Path]:
    """Each scaler module by its name inside the package; `_proto` counts as one."""
    modules = {path.stem: path for path in SCALER.glob("*.py")}
    modules["_proto"] = SCALER / "_proto" / "__init__.py"
    return modules


def graph() -> dict[str, set[str]]:
    """module -> the scaler modules it imports."""
    return {
        name: {
            dotted.split(".")[1]
            for dotted in imports_in(path)
            if dotted.startswith("scaler.") and dotted.split(".")[1] != name
        }
        for name, path in scaler_modules().items()
    }


def layer_of(module: str) -> int:
    for index, (_, members) in enumerate(LAYERS):
        if module in members:
            return index
    raise KeyError(module)


def layering_violations(edges: Mapping[str, set[str]]) -> Iterator[str]:
    """Each edge the layering refuses, as 'a -> b: why'."""
    names = [name for name, _ in LAYERS]
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            here, there = layer_of(source), layer_of(target)
            if there > here:
                yield f"{source} -> {target}: {names[here]} imports {names[there]}, a layer above"
            elif there == here and (source, target) not in SIDEWAYS:
                yield f"{source} -> {target}: sideways in {names[here]}, not in SIDEWAYS"
            elif NO_SKIPPING.get(names[here]) == names[there]:
                yield f"{source} -> {target}: {names[here]} reaches past the poller to the pods"
            if (source, target) in FORBIDDEN:
                yield f"{source} -> {target}: {FORBIDDEN[source, target]}"


def test_the_graph_is_read_from_the_real_tree() -> None:
    edges = graph()
    assert {"poller", "trigger", "config", "servicer", "aggregation", "readmodel"} <= edges.keys()
    assert "readmodel" in edges["poller"] and "pod_errors" in edges["pod_client"]


def test_every_scaler_module_has_a_layer() -> None:
    unplaced = [module for module in scaler_modules() if not any(module in m for _, m in LAYERS)]
    assert unplaced == []


def test_imports_follow_the_layers() -> None:
    assert list(layering_violations(graph())) == []


@pytest.mark.parametrize(
    ("edge", "named"),
    [
        pytest.param(("aggregation", "poller"), "a layer above", id="upward"),
        pytest.param(("poller", "pod_client"), "takes its fetch", id="forbidden"),
        pytest.param(("servicer", "pod_client"), "past the poller", id="skipping"),
        pytest.param(("readmodel", "poller"), "a layer above", id="view-reads-poller"),
        pytest.param(("servicer", "poller"), "never the poller", id="rpc-reads-poller"),
        pytest.param(("poller", "targets"), "a layer above", id="sideways-to-siblings"),
        pytest.param(("trigger", "scaling"), "not in SIDEWAYS", id="sideways"),
    ],
)
def test_a_wrong_edge_is_named(edge: tuple[str, str], named: str) -> None:
    edges = graph()
    edges[edge[0]] = edges[edge[0]] | {edge[1]}
    problems = list(layering_violations(edges))
    assert any(p.startswith(f"{edge[0]} -> {edge[1]}: ") and named in p for p in problems)


def test_the_graph_has_no_cycle() -> None:
    edges, done, path = graph(), set[str](), list[str]()

    def visit(module: str) -> None:
        assert module not in path, " -> ".join([*path[path.index(module) :], module])
        if module not in done:
            path.append(module)
            for target in sorted(edges[module]):
                visit(target)
            path.pop()
            done.add(module)

    for module in sorted(edges):
        visit(module)


@pytest.mark.parametrize("module", sorted(PURE))
def test_the_core_is_pure(module: str) -> None:
    used = {dotted.split(".")[0] for dotted in imports_in(SCALER / f"{module}.py")}
    assert sorted(used & IO_LIBRARIES) == []


@pytest.mark.parametrize("module", ["numbers", "target_key", "policy", "pod_errors"])
def test_plain_values_import_nothing_from_the_project(module: str) -> None:
    assert graph()[module] == set()


@pytest.mark.parametrize("package", ["api", "scaler"])
def test_the_services_never_import_tooling(package: str) -> None:
    offending = [
        f"{path.relative_to(ROOT)} imports {dotted}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for dotted in sorted(imports_in(path))
        if dotted.split(".")[0] in TOOLING
    ]
    assert offending == []


def test_readme_says_where_each_scaler_module_is() -> None:
    section = (ROOT / "README.md").read_text().split("## The scaler")[1].split("\n## ")[0]
    table = section.split("### Where things are")[1].split("\n### ")[0]
    listed = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    expected = {f"{module}.py" for module in scaler_modules() if module not in {"_proto"}}
    assert sorted(expected - listed - {"__init__.py"}) == []
    assert sorted(listed - expected - {"_proto/"}) == []
