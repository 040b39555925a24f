"""Helm for `make test` and `make e2e`: the pinned client from the e2e cache (built from
the Go module proxy when missing, like the control-plane binaries), and the direct
fleet's install with it. Helm keeps its own config, cache and data under a directory
of the caller's choosing, never in $HOME.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from e2e.cluster import build

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "rating-api"
# What the e2e overlay changes in the base, as chart values (the direct fleet).
VALUES = Path(__file__).resolve().parents[1] / "helm-values.yaml"
RELEASE = "rating-api"
# The fleet `make e2e` installs with Helm; the others stay on `kubectl apply -k`.
FLEET = "direct"


def component() -> build.Component:
    (helm,) = [c for c in build.COMPONENTS if c.name == "helm"]
    return helm


def binary() -> Path:
    """The helm binary, built first unless the cache holds one of the current recipe."""
    build.build_one(component())
    return build.binary("helm")


def chart_version(chart: Path = CHART) -> str:
    return str(yaml.safe_load((chart / "Chart.yaml").read_text())["version"])


def env(home: Path) -> dict[str, str]:
    """Helm's directories under `home`, and nothing of the caller's Helm set-up."""
    dirs = {"HELM_CONFIG_HOME": "config", "HELM_CACHE_HOME": "cache", "HELM_DATA_HOME": "data"}
    return {"PATH": "/usr/bin:/bin"} | {key: str(home / sub) for key, sub in dirs.items()}


def install_argv(kubeconfig: Path) -> list[str]:
    chart, values = CHART.relative_to(ROOT), VALUES.relative_to(ROOT)
    return [
        "upgrade",
        "--install",
        RELEASE,
        str(chart),
        "-f",
        str(values),
        "--kubeconfig",
        str(kubeconfig),
    ]


def install_summary() -> str:
    """The install as summary.json records it."""
    chart, values = CHART.relative_to(ROOT), VALUES.relative_to(ROOT)
    return f"helm upgrade --install {RELEASE} {chart} -f {values} (chart {chart_version()})"


def install(kubeconfig: Path, log: Path) -> None:
    """`helm upgrade --install` the chart with the e2e values; Helm's directories go
    beside the kubeconfig, its output to `log`."""
    argv = [str(build.binary("helm")), *install_argv(kubeconfig)]
    home = kubeconfig.parent / "helm"
    done = subprocess.run(
        argv, capture_output=True, text=True, cwd=ROOT, env=env(home), timeout=300, check=False
    )
    with log.open("a") as handle:
        handle.write(f"$ helm {' '.join(argv[1:])}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        raise RuntimeError(f"helm {' '.join(argv[1:])} failed:\n{done.stderr.strip()}")
