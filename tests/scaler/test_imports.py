"""The scaler's import graph, read from the source with `ast`: the seams point the right way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SCALER = Path(__file__).resolve().parents[2] / "scaler"


def imports_of(module: str) -> set[str]:
    """Every module a scaler module imports, at any depth in its file, as dotted names."""
    tree = ast.parse((SCALER / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def project_imports(module: str) -> set[str]:
    return {name.split(".")[1] for name in imports_of(module) if name.startswith("scaler.")}


def test_every_scaler_module_is_read() -> None:
    modules = {path.stem for path in SCALER.glob("*.py")}
    assert {"poller", "trigger", "config", "target_key", "aggregation"} <= modules


@pytest.mark.parametrize(
    ("source", "target"),
    [
        pytest.param("poller", "pod_client", id="poller-pod_client"),
        pytest.param("trigger", "aggregation", id="trigger-aggregation"),
        pytest.param("config", "trigger", id="config-trigger"),
    ],
)
def test_no_arrow(source: str, target: str) -> None:
    assert target not in project_imports(source)


def test_target_key_imports_nothing_from_the_project() -> None:
    assert project_imports("target_key") == set()


@pytest.mark.parametrize("module", ["aggregation", "scaling", "bucket_state", "snapshot"])
def test_the_core_is_pure(module: str) -> None:
    io = {"asyncio", "grpc", "aiohttp", "dns", "prometheus_client", "time", "kubernetes_asyncio"}
    assert not {name.split(".")[0] for name in imports_of(module)} & io
