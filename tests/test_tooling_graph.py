"""The tooling around the services (demo, e2e, bench, soak), read from the source with
`ast`: each job has one file, found by its name, and the shared jobs live in `harness`.

- No two tooling modules share a file name (`run.py`, `load.py`, `report.py` and
  `keda.py` each meant something else in each package).
- Only `harness.keda_client` makes an `ExternalScalerStub`: the one client that asks
  the scaler as KEDA asks it.
- The shared helpers are defined once, in `harness` (free ports, KEDA's reading of a
  value, waiting on a group of children, signals as an orderly end, the machine's
  description).
- The bucket state's schema string is written once, in `api.bucket_schema`.
- `harness` is the layer the tools build on: it imports none of them (what a harness
  module needs from a tool moves down into harness).
- `e2e` is three packages, lowest first: `cluster` (bringing it up), `experiment` (what
  runs on it), `report` (what is written). Each imports only from its own and those
  below; what sits at e2e's top level is run (`python -m`), above them all. No e2e
  module imports itself back in a circle, and the README's table names every e2e file.

Each check names the offending file, and each is shown failing on a tree made to fail.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest

from tests.test_import_graph import find_cycle, imports_in

ROOT = Path(__file__).resolve().parents[1]
TOOLING = ("demo", "e2e", "bench", "soak", "harness")
ABOVE_HARNESS = frozenset(TOOLING) - {"harness"}
PRODUCT = ("api", "scaler")
SHARED = frozenset(
    {"free_port", "keda_value", "wait_for", "until_signal", "signals_ignored", "machine"}
)
KEDA_CLIENT = "harness/keda_client.py"
SCHEMA_HOME = "api/bucket_schema.py"
SCHEMA = "openclaw.bucket/v1"
# e2e's packages, lowest first; the modules at e2e's top level are above them all.
E2E_LAYERS = ("cluster", "experiment", "report")
ENTRY_POINT = 'if __name__ == "__main__":'


def modules(root: Path, packages: Iterable[str]) -> list[Path]:
    found = []
    for package in packages:
        found += [
            path
            for path in sorted((root / package).rglob("*.py"))
            if "_proto" not in path.parts and "gomod" not in path.parts
        ]
    return found


def name(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


def shared_file_names(root: Path) -> dict[str, list[str]]:
    """File names used by more than one tooling module (`__init__`/`__main__` aside)."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in modules(root, TOOLING):
        if path.stem not in {"__init__", "__main__"}:
            by_name[path.name].append(name(root, path))
    return {file: paths for file, paths in by_name.items() if len(paths) > 1}


def stub_makers(root: Path) -> list[str]:
    """Tooling modules other than the KEDA client that name `ExternalScalerStub`."""
    makers = []
    for path in modules(root, TOOLING):
        tree = ast.parse(path.read_text(), str(path))
        names = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
        names |= {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
        if "ExternalScalerStub" in names and name(root, path) != KEDA_CLIENT:
            makers.append(name(root, path))
    return makers


def shared_defined_outside_harness(root: Path) -> list[str]:
    """`module: function` for each shared helper defined at module level outside harness."""
    found = []
    for path in modules(root, TOOLING):
        if path.relative_to(root).parts[0] == "harness":
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in SHARED:
                found.append(f"{name(root, path)}: {node.name}")
    return found


def schema_writers(root: Path) -> list[str]:
    """Modules other than api/bucket_schema.py with the schema string as a literal."""
    writers = []
    for path in modules(root, (*PRODUCT, *TOOLING)):
        tree = ast.parse(path.read_text(), str(path))
        literals = (n.value for n in ast.walk(tree) if isinstance(n, ast.Constant))
        if SCHEMA in literals and name(root, path) != SCHEMA_HOME:
            writers.append(name(root, path))
    return writers


def harness_reaching_up(root: Path) -> list[str]:
    """`harness/x.py -> demo.y` for each tool module harness imports, at any depth."""
    found = []
    for path in modules(root, ("harness",)):
        tools = {
            ".".join(dotted.split(".")[:2])
            for dotted in imports_in(path)
            if dotted.split(".")[0] in ABOVE_HARNESS
        }
        named = {tool for tool in tools if not any(t.startswith(f"{tool}.") for t in tools)}
        found += [f"{name(root, path)} -> {tool}" for tool in sorted(named)]
    return found


def e2e_module(parts: Sequence[str]) -> str:
    """The e2e module a dotted name is in: `e2e.cluster.up.Cluster` is in
    `e2e.cluster.up`, `e2e.in_sandbox.run` in `e2e.in_sandbox`."""
    return ".".join(parts[:3] if parts[1] in E2E_LAYERS else parts[:2])


def e2e_layer(parts: Sequence[str]) -> int:
    """The layer of an e2e module, from its dotted name or its path split in parts."""
    return E2E_LAYERS.index(parts[1]) if parts[1] in E2E_LAYERS else len(E2E_LAYERS)


def e2e_imports(path: Path) -> set[str]:
    """The e2e modules a file imports (a package's `__init__` by the package's name)."""
    dotted = (name.split(".") for name in imports_in(path))
    return {e2e_module(parts) for parts in dotted if parts[0] == "e2e" and len(parts) > 1}


def e2e_graph(root: Path) -> dict[str, set[str]]:
    """e2e module -> the e2e modules it imports, at any depth in it."""
    edges = {}
    for path in modules(root, ("e2e",)):
        parts = path.relative_to(root).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        edges[module] = e2e_imports(path) - {module}
    return edges


def e2e_reaching_up(root: Path) -> list[str]:
    """`e2e/cluster/up.py -> e2e.experiment.faults` for each e2e module imported from a
    layer below its own."""
    found = []
    for path in modules(root, ("e2e",)):
        here = e2e_layer(path.relative_to(root).parts)
        above = {m for m in e2e_imports(path) if e2e_layer(m.split(".")) > here}
        named = {m for m in above if not any(other.startswith(f"{m}.") for other in above)}
        found += [f"{name(root, path)} -> {module}" for module in sorted(named)]
    return found


def e2e_top_level_not_run(root: Path) -> list[str]:
    """Modules at e2e's top level (`__init__` aside) that nobody runs: each job that is
    not run belongs to one of the packages."""
    return [
        name(root, path)
        for path in sorted((root / "e2e").glob("*.py"))
        if path.name != "__init__.py" and ENTRY_POINT not in path.read_text()
    ]


def readme_e2e_files(root: Path) -> set[str]:
    """The e2e files the README's table of tooling files names: each `e2e` row's folder
    joined to each Python file the row names (an `__init__.py` in passing aside)."""
    named = set()
    for line in (root / "README.md").read_text().splitlines():
        if line.startswith("| `e2e"):
            folder, *spans = line.split("`")[1::2]
            named |= {folder + s for s in spans if s.endswith(".py") and s != "__init__.py"}
    return named


def readme_e2e_mismatch(root: Path) -> list[str]:
    """Each e2e file the README's table leaves out, and each it names that is not there."""
    present = {name(root, p) for p in modules(root, ("e2e",)) if p.name != "__init__.py"}
    named = readme_e2e_files(root)
    missing = [f"{path}: not in the README's table" for path in present - named]
    return sorted(
        missing + [f"{path}: in the README's table, not in e2e/" for path in named - present]
    )


def test_the_checks_read_the_real_tree() -> None:
    paths = {name(ROOT, path) for path in modules(ROOT, TOOLING)}
    assert {KEDA_CLIENT, "harness/group.py", "demo/orchestrate.py", "e2e/in_sandbox.py"} <= paths
    assert len(paths) > 60
    edges = e2e_graph(ROOT)
    assert {"e2e.cluster.up", "e2e.experiment.faults", "e2e.report.artifacts"} <= edges.keys()
    assert "e2e.cluster.up" in edges["e2e.experiment.faults"]
    assert {"e2e.cluster.up", "e2e.report.artifacts"} <= edges["e2e.in_sandbox"]


def test_no_two_tooling_modules_share_a_file_name() -> None:
    assert shared_file_names(ROOT) == {}


def test_only_the_keda_client_makes_a_scaler_stub() -> None:
    assert stub_makers(ROOT) == []


def test_shared_helpers_live_in_harness() -> None:
    assert shared_defined_outside_harness(ROOT) == []


def test_the_schema_string_is_written_once() -> None:
    assert schema_writers(ROOT) == []


def test_harness_imports_no_tool() -> None:
    assert harness_reaching_up(ROOT) == []


def test_e2e_imports_follow_its_layers() -> None:
    assert e2e_reaching_up(ROOT) == []


def test_e2e_has_no_import_cycle() -> None:
    assert find_cycle(e2e_graph(ROOT)) is None


def test_e2e_top_level_is_what_is_run() -> None:
    assert e2e_top_level_not_run(ROOT) == []


def test_readme_names_each_e2e_file() -> None:
    assert readme_e2e_mismatch(ROOT) == []


@pytest.fixture
def bad_tree(tmp_path: Path) -> Path:
    """A tree with one of each fault."""
    files = {
        "demo/run.py": "",
        "soak/run.py": "",
        "bench/probe.py": "from x import pb_grpc\nstub = pb_grpc.ExternalScalerStub(None)\n",
        "e2e/ports.py": "def free_port() -> int:\n    return 0\n",
        "scaler/parse.py": f"WANTED = {SCHEMA!r}\n",
        KEDA_CLIENT: "stub = ExternalScalerStub\n",
        SCHEMA_HOME: f"SCHEMA = {SCHEMA!r}\n",
        "harness/ready.py": "def free_port() -> int:\n    return 0\n",
        "harness/hpa.py": "def behavior() -> None:\n    from demo import scaledobject\n",
        "e2e/cluster/up.py": "from e2e.experiment import faults\n",
        "e2e/experiment/faults.py": "from e2e.cluster.up import Cluster\n",
        "e2e/report/bench.py": "from e2e.cluster import up\nfrom e2e.experiment import faults\n",
        "e2e/__main__.py": f"from e2e.report import bench\n\n{ENTRY_POINT}\n    pass\n",
        "README.md": "| `e2e/cluster/` | `up.py`, `gone.py` |\n| `e2e/report/` | `bench.py` |\n",
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    return tmp_path


def test_each_fault_is_named(bad_tree: Path) -> None:
    assert shared_file_names(bad_tree) == {"run.py": ["demo/run.py", "soak/run.py"]}
    assert stub_makers(bad_tree) == ["bench/probe.py"]
    assert shared_defined_outside_harness(bad_tree) == ["e2e/ports.py: free_port"]
    assert schema_writers(bad_tree) == ["scaler/parse.py"]
    assert harness_reaching_up(bad_tree) == ["harness/hpa.py -> demo.scaledobject"]
    assert e2e_reaching_up(bad_tree) == ["e2e/cluster/up.py -> e2e.experiment.faults"]
    cycle = "e2e.cluster.up -> e2e.experiment.faults -> e2e.cluster.up"
    assert find_cycle(e2e_graph(bad_tree)) == cycle
    assert e2e_top_level_not_run(bad_tree) == ["e2e/ports.py"]
    assert readme_e2e_mismatch(bad_tree) == [
        "e2e/__main__.py: not in the README's table",
        "e2e/cluster/gone.py: in the README's table, not in e2e/",
        "e2e/experiment/faults.py: not in the README's table",
        "e2e/ports.py: not in the README's table",
    ]
