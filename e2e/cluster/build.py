"""Build the pinned control-plane binaries from the Go module proxy, once.

Each binary goes to `<cache>/bin/` with a record beside it (`<name>.json`: version,
recipe hash, build seconds). A binary whose record matches the current recipe (pinned
version, package, flags, Go version, the wrapper module's go.mod/go.sum) is kept, so a
warm run costs a few hashes. Builds run under `nice -n 19`; Go's own build and module
caches make a rebuild after a recipe change fast.

    python -m e2e.cluster.build [--only NAME ...] [--list]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parents[1]
GOMOD = E2E_DIR / "gomod"
KUBERNETES_VERSION = "v1.35.4"
ETCD_VERSION = "v3.6.16"
KEDA_VERSION = "v2.20.2"
KEDA_MODULE = "github.com/kedacore/keda/v2"
# Prometheus 3.4.2 (its Go module is tagged v0.<major*100+minor>.<patch>), the release
# KEDA v2.20.2 pins; Debian's package lacks kubernetes_sd_configs.
PROMETHEUS_VERSION = "v0.304.2"
# The Helm client: `make test` lints and renders charts/rating-api with it, `make e2e`
# installs the direct fleet with it.
HELM_VERSION = "v4.3.2"
# The node: kubelet runs pods through containerd's CRI, which runs them with Debian's runc.
CONTAINERD_VERSION = "v2.2.9"
CONTAINERD_MODULE = "github.com/containerd/containerd/v2"
# Storage drivers that need cgo or host tools; the node uses overlayfs.
CONTAINERD_TAGS = ("no_btrfs", "no_devmapper", "no_zfs")
BUILD_FLAGS = ("-trimpath",)
BASE_LDFLAGS = ("-s", "-w")


@dataclass(frozen=True)
class Component:
    name: str
    version: str
    package: str
    # "keda": a copy of KEDA's own module; otherwise a wrapper module under e2e/gomod.
    module: str
    ldflags: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


def _kube_ldflags() -> tuple[str, ...]:
    minor = KUBERNETES_VERSION.split(".")[1]
    values = {"gitVersion": KUBERNETES_VERSION, "gitMajor": "1", "gitMinor": minor}
    values |= {"gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z"}
    return tuple(
        f"-X=k8s.io/{pkg}/version.{key}={value}"
        for pkg in ("component-base", "client-go/pkg")
        for key, value in values.items()
    )


_KEDA_LDFLAGS = (f"-X={KEDA_MODULE}/version.Version={KEDA_VERSION.removeprefix('v')}",)
_CONTAINERD_LDFLAGS = (
    f"-X={CONTAINERD_MODULE}/version.Version={CONTAINERD_VERSION.removeprefix('v')}",
    f"-X={CONTAINERD_MODULE}/version.Package={CONTAINERD_MODULE}",
)
_HELM_LDFLAGS = tuple(
    f"-X=helm.sh/helm/v4/internal/version.{key}={value}"
    for key, value in {"version": HELM_VERSION, "gitTreeState": "clean"}.items()
)

COMPONENTS = (
    Component("etcd", ETCD_VERSION, "go.etcd.io/etcd/server/v3", "etcd"),
    Component(
        "kube-apiserver",
        KUBERNETES_VERSION,
        "k8s.io/kubernetes/cmd/kube-apiserver",
        "kube",
        _kube_ldflags(),
    ),
    Component(
        "kube-controller-manager",
        KUBERNETES_VERSION,
        "k8s.io/kubernetes/cmd/kube-controller-manager",
        "kube",
        _kube_ldflags(),
    ),
    Component(
        "prometheus",
        PROMETHEUS_VERSION,
        "github.com/prometheus/prometheus/cmd/prometheus",
        "prometheus",
        ("-X=github.com/prometheus/common/version.Version=3.4.2",),
    ),
    Component("keda-operator", KEDA_VERSION, "./cmd/operator", "keda", _KEDA_LDFLAGS),
    Component("keda-adapter", KEDA_VERSION, "./cmd/adapter", "keda", _KEDA_LDFLAGS),
    Component("helm", HELM_VERSION, "helm.sh/helm/v4/cmd/helm", "helm", _HELM_LDFLAGS),
    *(
        Component(
            name, KUBERNETES_VERSION, f"k8s.io/kubernetes/cmd/{name}", "kube", _kube_ldflags()
        )
        for name in ("kube-scheduler", "kubelet")
    ),
    *(
        Component(
            name,
            CONTAINERD_VERSION,
            f"{CONTAINERD_MODULE}/cmd/{name}",
            "containerd",
            _CONTAINERD_LDFLAGS,
            CONTAINERD_TAGS,
        )
        for name in ("containerd", "containerd-shim-runc-v2", "ctr")
    ),
    # The pod sandbox's process, from e2e/gomod/pause/main.go.
    Component("pause", "local", ".", "pause"),
)


def cache_dir() -> Path:
    return Path(os.environ.get("OPENCLAW_E2E_CACHE", "/var/cache/openclaw-e2e"))


def bin_dir() -> Path:
    return cache_dir() / "bin"


def binary(name: str) -> Path:
    return bin_dir() / name


def go_env() -> dict[str, str]:
    return os.environ | {"CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false", "GOTOOLCHAIN": "local"}


def go(args: Sequence[str], cwd: Path) -> str:
    done = subprocess.run(
        ["go", *args], cwd=cwd, env=go_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"`go {' '.join(args)}` in {cwd} failed:\n{done.stderr.strip()}")
    return done.stdout


def keda_source() -> Path:
    """A writable copy of KEDA's module, built as the main module so that its own
    replace directives apply (`go install ...@version` refuses modules that have them)."""
    target = cache_dir() / "src" / f"keda-{KEDA_VERSION}"
    if (target / "go.mod").exists():
        return target
    info = json.loads(go(["mod", "download", "-json", f"{KEDA_MODULE}@{KEDA_VERSION}"], E2E_DIR))
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(info["Dir"], partial)
    for path in [partial, *partial.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o200)
    partial.rename(target)
    return target


def module_dir(component: Component) -> Path:
    return keda_source() if component.module == "keda" else GOMOD / component.module


def recipe(component: Component, directory: Path) -> str:
    """A hash of everything that decides the binary's content."""
    parts = {
        "component": asdict(component),
        "flags": BUILD_FLAGS + BASE_LDFLAGS,
        "go": go(["env", "GOVERSION"], directory).strip(),
        "go.mod": (directory / "go.mod").read_text(),
        "go.sum": (directory / "go.sum").read_text(),
    }
    sources = {path.name: path.read_text() for path in sorted(directory.glob("*.go"))}
    if sources:  # a program of this project's own
        parts["sources"] = sources
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def record_path(name: str) -> Path:
    return bin_dir() / f"{name}.json"


def read_record(name: str) -> dict[str, object] | None:
    try:
        loaded = json.loads(record_path(name).read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def up_to_date(component: Component, recipe_hash: str) -> bool:
    record = read_record(component.name)
    return (
        binary(component.name).exists()
        and record is not None
        and record.get("recipe") == recipe_hash
    )


def build_one(component: Component) -> float | None:
    """Build `component` unless its cached binary matches; the seconds it took, or None."""
    directory = module_dir(component)
    recipe_hash = recipe(component, directory)
    if up_to_date(component, recipe_hash):
        say(f"  {component.name:<24} {component.version}: cached")
        return None
    say(f"  {component.name:<24} {component.version}: building (nice 19; minutes when cold)")
    bin_dir().mkdir(parents=True, exist_ok=True)
    # One partial file per process: `make test` (helm) and `make e2e` may build at once.
    partial = binary(component.name).with_suffix(f".partial-{os.getpid()}")
    ldflags = " ".join(BASE_LDFLAGS + component.ldflags)
    argv = ["nice", "-n", "19", "go", "build", *BUILD_FLAGS, f"-ldflags={ldflags}"]
    if component.tags:
        argv.append(f"-tags={','.join(component.tags)}")
    started = time.monotonic()
    done = subprocess.run(
        [*argv, "-o", str(partial), component.package], cwd=directory, env=go_env(), check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"building {component.name} failed (exit {done.returncode})")
    seconds = round(time.monotonic() - started, 1)
    partial.rename(binary(component.name))
    record: dict[str, object] = {"name": component.name, "version": component.version}
    record["recipe"] = recipe_hash
    record |= {"package": component.package, "build_s": seconds, "built_at": time.time()}
    record_path(component.name).write_text(json.dumps(record, indent=2) + "\n")
    say(f"  {component.name:<24} built in {seconds:g} s")
    return seconds


def missing() -> list[str]:
    """Components without a binary that matches the current recipe."""
    return [c.name for c in COMPONENTS if not up_to_date(c, recipe(c, module_dir(c)))]


def say(text: str) -> None:
    print(text, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m e2e.cluster.build", description=__doc__)
    names = [c.name for c in COMPONENTS]
    parser.add_argument("--only", action="append", choices=names, help="build only these")
    parser.add_argument("--list", action="store_true", help="print each binary's record")
    args = parser.parse_args(argv)
    if args.list:
        for name in names:
            print(json.dumps(read_record(name)))
        return 0
    say(f"Control-plane binaries in {bin_dir()}:")
    for component in COMPONENTS:
        if args.only is None or component.name in args.only:
            build_one(component)
    return 0


if __name__ == "__main__":
    sys.exit(main())
