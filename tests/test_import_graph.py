"""The import graph of `scaler/`, read from the source with `ast`: data flows one way.

pods -> poller -> read model -> servicer: each scaler module sits in one layer, and
imports only from its own layer (the edges listed in SIDEWAYS) or the layers below.
The RPC side never reaches past the poller to the pods, the pure core imports no I/O
library, and neither `api/` nor `scaler/` imports the tooling around them. A module of
the `scaler/discovery/` package is a node of its own (`discovery.dns`), the package's
`__init__` is `discovery`, and the rest of the scaler imports only that. Each check
names the offending edge.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCALER = ROOT / "scaler"

# Lowest first. A module may import from its own layer only along SIDEWAYS.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    ("values", frozenset({"target_key", "policy", "pod_errors"})),
    (
        "pure",
        frozenset(
            {
                "bucket_state",
                "held_state",
                "aggregation",
                "series",
                "forecast",
                "trigger",
                "scaling",
                "config",
            }
        ),
    ),
    # What readers see of a target: written by the poller above it, read by the front.
    ("readmodel", frozenset({"readmodel"})),
    (
        "pods",
        frozenset(
            {
                "pod_client",
                "discovery",
                "discovery.contract",
                "discovery.static",
                "discovery.dns",
                "discovery.endpointslices",
                "discovery.choose",
            }
        ),
    ),
    # One shard of a target's pods: their series, a cycle over them, their partial sums.
    ("shard", frozenset({"shard"})),
    # The worker processes that hold the shards, and the main process's side of them.
    ("workers", frozenset({"worker", "workers"})),
    ("poller", frozenset({"poller"})),
    ("targets", frozenset({"targets"})),
    ("front", frozenset({"_proto", "rpc_metrics", "servicer", "metrics", "http"})),
    ("wiring", frozenset({"server", "tls", "__main__", "__init__"})),
)
SIDEWAYS = frozenset(
    {
        ("aggregation", "bucket_state"),
        ("aggregation", "series"),
        ("aggregation", "held_state"),
        ("series", "bucket_state"),
        ("scaling", "aggregation"),
        ("scaling", "trigger"),
        ("discovery", "discovery.contract"),
        ("discovery", "discovery.choose"),
        ("discovery.static", "discovery.contract"),
        ("discovery.dns", "discovery.contract"),
        ("discovery.endpointslices", "discovery.contract"),
        ("discovery.choose", "discovery.contract"),
        ("discovery.choose", "discovery.static"),
        ("discovery.choose", "discovery.dns"),
        ("discovery.choose", "discovery.endpointslices"),
        ("servicer", "_proto"),
        ("servicer", "rpc_metrics"),
        ("metrics", "rpc_metrics"),
        ("__main__", "server"),
        ("server", "tls"),
        ("workers", "worker"),
    }
)
# Layers above the poller read what it computed; they never reach the pods themselves.
POD_SIDE = frozenset({"pods", "shard", "workers"})
NO_SKIPPING = {"targets": POD_SIDE, "front": POD_SIDE}
# Edges the layers alone would allow, but that would put a job in the wrong place.
FORBIDDEN = {
    ("poller", "pod_client"): "the poller takes its fetch as an argument",
    ("shard", "pod_client"): "the shard takes its fetch as an argument",
    ("poller", "workers"): "the poller takes its shards as an argument",
    ("poller", "worker"): "the poller takes its shards as an argument",
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
        "target_key",
        "policy",
        "pod_errors",
        "bucket_state",
        "held_state",
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
    """Each scaler module by its name inside the package; `_proto` counts as one, and a
    subpackage's modules are `package.module` (its `__init__` is `package`)."""
    modules = {path.stem: path for path in SCALER.glob("*.py")}
    modules["_proto"] = SCALER / "_proto" / "__init__.py"
    for init in SCALER.glob("*/__init__.py"):
        package = init.parent.name
        if package != "_proto":
            modules[package] = init
            modules |= {f"{package}.{path.stem}": path for path in init.parent.glob("[!_]*.py")}
    return modules


def scaler_module_of(dotted: str, modules: Mapping[str, Path]) -> str | None:
    """The scaler module an imported name lives in: `scaler.discovery.dns.make_resolver`
    is in `discovery.dns`, `scaler.discovery.Discoveries` in `discovery`."""
    parts = dotted.split(".")
    if parts[0] != "scaler" or len(parts) < 2:
        return None
    nested = ".".join(parts[1:3])
    return nested if nested in modules else parts[1]


def graph() -> dict[str, set[str]]:
    """module -> the scaler modules it imports."""
    modules = scaler_modules()
    return {
        name: {
            target
            for dotted in imports_in(path)
            if (target := scaler_module_of(dotted, modules)) is not None and target != name
        }
        for name, path in modules.items()
    }


def reaching_into_packages(edges: Mapping[str, set[str]]) -> Iterator[str]:
    """Each edge from outside a subpackage to one of its modules, not the package itself."""
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            package = target.partition(".")[0]
            if "." in target and source.partition(".")[0] != package:
                yield f"{source} -> {target}: import it from the package, `scaler.{package}`"


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
            elif names[there] in NO_SKIPPING.get(names[here], ()):
                yield f"{source} -> {target}: {names[here]} reaches past the poller to the pods"
            if (source, target) in FORBIDDEN:
                yield f"{source} -> {target}: {FORBIDDEN[source, target]}"


def test_the_graph_is_read_from_the_real_tree() -> None:
    edges = graph()
    assert {"poller", "trigger", "config", "servicer", "aggregation", "readmodel"} <= edges.keys()
    assert "readmodel" in edges["poller"] and "pod_errors" in edges["pod_client"]
    assert "discovery" in edges["poller"] and "discovery" in edges["server"]
    assert edges["discovery.choose"] >= {"discovery.dns", "discovery.endpointslices"}


def test_the_scaler_imports_a_subpackage_through_its_init() -> None:
    assert list(reaching_into_packages(graph())) == []
    edges = graph()
    edges["poller"] = edges["poller"] | {"discovery.dns"}
    assert list(reaching_into_packages(edges)) == [
        "poller -> discovery.dns: import it from the package, `scaler.discovery`"
    ]


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
        pytest.param(("metrics", "workers"), "past the poller", id="skipping-to-workers"),
        pytest.param(("poller", "workers"), "takes its shards", id="poller-wired-shards"),
        pytest.param(("shard", "poller"), "a layer above", id="shard-upward"),
        pytest.param(("readmodel", "poller"), "a layer above", id="view-reads-poller"),
        pytest.param(("servicer", "poller"), "never the poller", id="rpc-reads-poller"),
        pytest.param(("poller", "targets"), "a layer above", id="sideways-to-siblings"),
        pytest.param(("trigger", "scaling"), "not in SIDEWAYS", id="sideways"),
        pytest.param(("discovery.dns", "poller"), "a layer above", id="discovery-upward"),
        pytest.param(("discovery.dns", "discovery.static"), "not in SIDEWAYS", id="in-package"),
    ],
)
def test_a_wrong_edge_is_named(edge: tuple[str, str], named: str) -> None:
    edges = graph()
    edges[edge[0]] = edges[edge[0]] | {edge[1]}
    problems = list(layering_violations(edges))
    assert any(p.startswith(f"{edge[0]} -> {edge[1]}: ") and named in p for p in problems)


def package_graph(package: Path) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports, at any depth in it (an import
    inside a function is an edge too: it runs sooner or later)."""
    modules = {path.stem: path for path in package.glob("*.py")}
    prefix = f"{package.name}."
    return {
        name: {
            dotted.split(".")[1]
            for dotted in imports_in(path)
            if dotted.startswith(prefix) and dotted.split(".")[1] in modules
        }
        - {name}
        for name, path in modules.items()
    }


def find_cycle(edges: Mapping[str, set[str]]) -> str | None:
    """One circle of imports as 'a -> b -> a', or None when there is none."""
    done: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> str | None:
        if module in path:
            return " -> ".join([*path[path.index(module) :], module])
        if module in done:
            return None
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if (found := visit(target)) is not None:
                return found
        path.pop()
        done.add(module)
        return None

    for module in sorted(edges):
        if (found := visit(module)) is not None:
            return found
    return None


def test_the_graph_has_no_cycle() -> None:
    assert find_cycle(graph()) is None


@pytest.mark.parametrize(("package", "edge"), [("api", ("metrics", "bucket")), ("common", None)])
def test_a_package_has_no_import_cycle(package: str, edge: tuple[str, str] | None) -> None:
    edges = package_graph(ROOT / package)
    assert len(edges) >= 4
    assert edge is None or edge[1] in edges[edge[0]]
    assert find_cycle(edges) is None


def test_a_cycle_is_named_edge_by_edge(tmp_path: Path) -> None:
    package = tmp_path / "api"
    package.mkdir()
    (package / "bucket.py").write_text("")
    (package / "metrics.py").write_text(
        "from api.bucket import TokenBucket\n\ndef registry():\n    from api import exposition\n"
    )
    (package / "exposition.py").write_text("from api.metrics import RatingMetrics\n")
    edges = package_graph(package)
    assert edges == {
        "bucket": set(),
        "metrics": {"bucket", "exposition"},
        "exposition": {"metrics"},
    }
    assert find_cycle(edges) == "exposition -> metrics -> exposition"


@pytest.mark.parametrize("module", sorted(PURE))
def test_the_core_is_pure(module: str) -> None:
    used = {dotted.split(".")[0] for dotted in imports_in(scaler_modules()[module])}
    assert sorted(used & IO_LIBRARIES) == []


@pytest.mark.parametrize("module", ["target_key", "policy", "pod_errors"])
def test_plain_values_import_nothing_from_the_project(module: str) -> None:
    assert graph()[module] == set()


@pytest.mark.parametrize("package", ["api", "scaler", "common"])
def test_the_services_never_import_tooling(package: str) -> None:
    offending = [
        f"{path.relative_to(ROOT)} imports {dotted}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for dotted in sorted(imports_in(path))
        if dotted.split(".")[0] in TOOLING
    ]
    assert offending == []


def outside_imports(package: Path) -> list[str]:
    """`file imports name` for each import of anything but the standard library and
    the package itself."""
    allowed = set(sys.stdlib_module_names) | {"__future__", package.name}
    return [
        f"{path.relative_to(package.parent)} imports {dotted}"
        for path in sorted(package.rglob("*.py"))
        for dotted in sorted(imports_in(path))
        if dotted.split(".")[0] not in allowed
    ]


def test_the_shared_package_imports_only_the_standard_library(tmp_path: Path) -> None:
    """`common` is below both services: it never reaches up into either, nor needs a
    dependency only one of them has."""
    assert outside_imports(ROOT / "common") == []
    bad = tmp_path / "common"
    bad.mkdir()
    (bad / "flags.py").write_text("import os\nfrom scaler.config import FLAGS\n")
    assert outside_imports(bad) == [
        "common/flags.py imports scaler.config",
        "common/flags.py imports scaler.config.FLAGS",
    ]


@pytest.mark.parametrize("package", ["api", "scaler"])
def test_both_services_use_the_shared_package(package: str) -> None:
    used = {
        dotted.split(".")[1]
        for path in (ROOT / package).rglob("*.py")
        for dotted in imports_in(path)
        if dotted.startswith("common.")
    }
    assert {"flags", "numbers", "token_file", "listener"} <= used


def readme_table(heading: str) -> set[str]:
    """The files a README section's first table lists, by their first `code` cell."""
    section = (ROOT / "README.md").read_text().split(f"\n## {heading}")[1].split("\n## ")[0]
    if "### Where things are" in section:
        section = section.split("### Where things are")[1].split("\n### ")[0]
    return {line.split("`")[1] for line in section.splitlines() if line.startswith("| `")}


def test_readme_says_where_each_scaler_module_is() -> None:
    listed = readme_table("The scaler")
    expected = {
        path.relative_to(SCALER).as_posix()
        for module, path in scaler_modules().items()
        if module != "_proto"
    }
    assert sorted(expected - listed - {"__init__.py"}) == []
    assert sorted(listed - expected - {"_proto/"}) == []


@pytest.mark.parametrize(
    ("heading", "package"),
    [
        ("The rating service", "api"),
        ("What both services share", "common"),
        ("Scale from zero", "activator"),
    ],
)
def test_readme_says_where_each_module_is(heading: str, package: str) -> None:
    expected = {path.name for path in (ROOT / package).glob("*.py")} - {"__init__.py"}
    assert sorted(readme_table(heading) ^ expected) == []
