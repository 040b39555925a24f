"""The node's CNI plugin: each pod gets an address of its own on the run's loopback.

containerd calls it, as the CNI specification says (https://www.cni.dev/docs/spec/):
the command and the pod's network namespace in the environment (`CNI_COMMAND`,
`CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`), the network's configuration on stdin, a
result or an error as JSON on stdout.

A pod here gets what `e2e.cluster.sandbox` designs for it: an address from the
configured subnet (10.244.0.0/16) added to `lo` of the run's network namespace, whose
only device is `lo`. So that the pod's processes can bind that address, the pod's
network namespace is made that same namespace: ADD bind-mounts the namespace the plugin
runs in (containerd's, the run's) over the file containerd made for the pod, before the
pod's first container joins it by that path; DEL takes the mount and the address away.
Every packet of the run stays on loopback, and the pods still become endpoints through
the EndpointSlice controller (the API server refuses 127/8 there).

Addresses are handed out in turn (the next one after the last taken), so one just given
back is not reused at once, as the host-local IPAM plugin does. State is one file per
address under `dataDir`, taken under a lock: containerd sets pods up concurrently.

The network configuration:

    {"cniVersion": "1.0.0", "name": "openclaw-e2e",
     "plugins": [{"type": "openclaw-e2e-lo", "subnet": "10.244.0.0/16",
                  "dataDir": "/path/to/state"}]}
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

SUPPORTED = ("0.4.0", "1.0.0", "1.1.0")
# Error codes from the specification.
INCOMPATIBLE_VERSION = 1
INVALID_CONFIG = 7
TRY_AGAIN = 11
INTERNAL = 999


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def own_netns() -> str:
    return f"/proc/{os.getpid()}/ns/net"


def same_file(a: str, b: str) -> bool:
    try:
        first, second = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (first.st_dev, first.st_ino) == (second.st_dev, second.st_ino)


class Store:
    """The addresses taken: `<dataDir>/addresses/<address>` holds the container's id."""

    def __init__(self, data_dir: Path, subnet: ipaddress.IPv4Network) -> None:
        self.dir, self.subnet = data_dir, subnet
        self.taken = data_dir / "addresses"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.taken.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def held_by(self, container_id: str) -> str | None:
        for path in self.taken.iterdir():
            if path.read_text().strip() == container_id:
                return path.name
        return None

    def take(self, container_id: str) -> str:
        """The next free address after the last one taken; the same one again for a
        container that has one (ADD may be retried)."""
        held = self.held_by(container_id)
        if held is not None:
            return held
        hosts = list(self.subnet.hosts())
        last_file = self.dir / "last"
        last = last_file.read_text().strip() if last_file.exists() else ""
        start = hosts.index(ipaddress.IPv4Address(last)) + 1 if last in map(str, hosts) else 0
        for offset in range(len(hosts)):
            address = str(hosts[(start + offset) % len(hosts)])
            path = self.taken / address
            if not path.exists():
                path.write_text(container_id + "\n")
                last_file.write_text(address + "\n")
                return address
        raise CniError(TRY_AGAIN, f"no free address left in {self.subnet}")

    def give_back(self, address: str) -> None:
        (self.taken / address).unlink(missing_ok=True)


def ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=False)


def add(store: Store, env: Mapping[str, str], version: str) -> dict[str, Any]:
    container_id, netns = env.get("CNI_CONTAINERID", ""), env.get("CNI_NETNS", "")
    if not container_id or not netns:
        raise CniError(INVALID_CONFIG, "ADD needs CNI_CONTAINERID and CNI_NETNS")
    with store.locked():
        address = store.take(container_id)
    done = ip("addr", "replace", f"{address}/32", "dev", "lo")
    if done.returncode != 0:
        raise CniError(INTERNAL, f"cannot add {address} to lo", done.stderr.strip())
    if not same_file(netns, own_netns()):
        mounted = subprocess.run(
            ["mount", "--bind", own_netns(), netns], capture_output=True, text=True, check=False
        )
        if mounted.returncode != 0:
            raise CniError(
                INTERNAL, f"cannot bind-mount the run's netns on {netns}", mounted.stderr.strip()
            )
    interface = {"name": env.get("CNI_IFNAME", "eth0"), "sandbox": netns}
    return {
        "cniVersion": version,
        "interfaces": [interface],
        "ips": [{"address": f"{address}/32", "interface": 0}],
        "dns": {},
    }


def delete(store: Store, env: Mapping[str, str]) -> None:
    """Undo ADD; what is already gone is no error (DEL may come more than once)."""
    container_id, netns = env.get("CNI_CONTAINERID", ""), env.get("CNI_NETNS", "")
    with store.locked():
        address = store.held_by(container_id)
        if address is not None:
            ip("addr", "del", f"{address}/32", "dev", "lo")
            store.give_back(address)
    if netns and same_file(netns, own_netns()):
        subprocess.run(["umount", netns], capture_output=True, check=False)


def check(store: Store, env: Mapping[str, str]) -> None:
    address = store.held_by(env.get("CNI_CONTAINERID", ""))
    if address is None:
        raise CniError(INTERNAL, "no address is held for this container")
    if f" {address}/32 " not in ip("-o", "addr", "show", "dev", "lo").stdout:
        raise CniError(INTERNAL, f"{address} is no longer on lo")


def plugin_config(text: str) -> tuple[dict[str, Any], Store]:
    try:
        config = json.loads(text)
        subnet = ipaddress.IPv4Network(config["subnet"])
        data_dir = Path(config["dataDir"])
    except (ValueError, KeyError, TypeError) as error:
        raise CniError(INVALID_CONFIG, f"bad network configuration: {error!r}") from error
    return config, Store(data_dir, subnet)


def run(command: str, env: Mapping[str, str], stdin: str) -> dict[str, Any] | None:
    """One call: the JSON to print, or None when there is nothing to print."""
    if command == "VERSION":
        return {"cniVersion": SUPPORTED[-1], "supportedVersions": list(SUPPORTED)}
    config, store = plugin_config(stdin)
    version = str(config.get("cniVersion", "1.0.0"))
    if version not in SUPPORTED:
        raise CniError(INCOMPATIBLE_VERSION, f"cniVersion {version} is not one of {SUPPORTED}")
    if command == "ADD":
        return add(store, env, version)
    if command == "DEL":
        delete(store, env)
    elif command == "CHECK":
        check(store, env)
    elif command not in ("GC", "STATUS"):
        raise CniError(INVALID_CONFIG, f"unknown CNI_COMMAND {command!r}")
    return None


def main() -> int:
    command = os.environ.get("CNI_COMMAND", "")
    stdin = "" if command == "VERSION" else sys.stdin.read()
    try:
        result = run(command, os.environ, stdin)
    except CniError as error:
        out = {"cniVersion": "1.0.0", "code": error.code, "msg": error.msg}
        print(json.dumps(out | ({"details": error.details} if error.details else {})))
        return 1
    if result is not None:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
