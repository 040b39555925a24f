"""The node's CNI plugin (`e2e.cluster.cni`), called as containerd calls it, in a network and
mount namespace of the test's own: a pod's namespace file (made by `unshare --net=FILE`,
as containerd makes one) becomes the namespace the plugin runs in, its address is on
`lo` there, and DEL takes both away. Needs root; skipped otherwise."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Run inside `unshare --net --mount`: calls the plugin like containerd, prints what it saw.
SCENARIO = r"""
import json, os, subprocess, sys
from pathlib import Path

work = Path(sys.argv[1])
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
subprocess.run(["mount", "--make-rprivate", "/"], check=True)
config = json.dumps({"cniVersion": "1.0.0", "name": "t", "type": "openclaw-e2e-lo",
                     "subnet": sys.argv[2], "dataDir": str(work / "state")})

def call(command, container="", netns=""):
    env = os.environ | {"CNI_COMMAND": command, "CNI_CONTAINERID": container,
                        "CNI_NETNS": netns, "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent"}
    done = subprocess.run([sys.executable, "-m", "e2e.cluster.cni"], input=config, env=env,
                          capture_output=True, text=True)
    return {"rc": done.returncode, "out": json.loads(done.stdout) if done.stdout else None}

def pod_netns(name):
    path = work / name
    path.touch()
    subprocess.run(["unshare", f"--net={path}", "true"], check=True)
    return str(path)

def same_as_ours(path):
    a, b = os.stat(path), os.stat("/proc/self/ns/net")
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)

def on_lo():
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show", "dev", "lo"],
                           capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[3] for line in shown.splitlines())

seen = {"version": call("VERSION")}
a, b = pod_netns("a"), pod_netns("b")
seen["before"] = same_as_ours(a)
seen["add_a"] = call("ADD", "ctr-a", a)
seen["add_a_again"] = call("ADD", "ctr-a", a)
seen["add_b"] = call("ADD", "ctr-b", b)
seen["joined"] = [same_as_ours(a), same_as_ours(b)]
seen["lo_after_add"] = on_lo()
seen["check_a"] = call("CHECK", "ctr-a", a)
seen["del_a"] = call("DEL", "ctr-a", a)
seen["del_a_again"] = call("DEL", "ctr-a", a)
seen["a_after_del"] = same_as_ours(a)
seen["lo_after_del"] = on_lo()
seen["add_c"] = call("ADD", "ctr-c", pod_netns("c"))
seen["full"] = call("ADD", "ctr-d", pod_netns("d"))
seen["no_netns"] = call("ADD", "ctr-e", "")
config = "{not json"
seen["bad_config"] = call("ADD", "ctr-f", pod_netns("f"))
print(json.dumps(seen))
"""


def skip_reason() -> str | None:
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("ip") is None:
        return "needs root, unshare and ip (network and mount namespaces)"
    return None


@pytest.fixture(scope="module")
def seen(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    work = tmp_path_factory.mktemp("cni")
    # A /30 has two host addresses: .1 and .2, so a third pod finds none.
    argv = ["unshare", "--net", "--mount", sys.executable, "-c", SCENARIO, str(work)]
    done = subprocess.run(
        [*argv, "10.250.0.0/30"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


pytestmark = pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or "")


def test_version_lists_the_specifications_versions(seen: dict[str, object]) -> None:
    assert seen["version"] == {
        "rc": 0,
        "out": {"cniVersion": "1.1.0", "supportedVersions": ["0.4.0", "1.0.0", "1.1.0"]},
    }


def test_add_gives_each_pod_its_own_address_on_the_runs_lo(seen: dict[str, object]) -> None:
    add_a, add_b = seen["add_a"], seen["add_b"]
    assert add_a == {
        "rc": 0,
        "out": {
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "sandbox": add_a["out"]["interfaces"][0]["sandbox"]}],  # type: ignore[index]
            "ips": [{"address": "10.250.0.1/32", "interface": 0}],
            "dns": {},
        },
    }
    assert add_b["out"]["ips"] == [{"address": "10.250.0.2/32", "interface": 0}]  # type: ignore[index]
    assert seen["lo_after_add"] == ["10.250.0.1/32", "10.250.0.2/32", "127.0.0.1/8"]


def test_add_makes_the_pods_namespace_the_one_the_plugin_runs_in(seen: dict[str, object]) -> None:
    assert seen["before"] is False
    assert seen["joined"] == [True, True]


def test_a_repeated_add_keeps_the_address(seen: dict[str, object]) -> None:
    assert seen["add_a_again"] == seen["add_a"]


def test_check_passes_while_the_address_is_there(seen: dict[str, object]) -> None:
    assert seen["check_a"] == {"rc": 0, "out": None}


def test_del_takes_the_address_and_the_mount_away_and_can_repeat(
    seen: dict[str, object],
) -> None:
    assert seen["del_a"] == {"rc": 0, "out": None}
    assert seen["del_a_again"] == {"rc": 0, "out": None}
    assert seen["a_after_del"] is False
    assert seen["lo_after_del"] == ["10.250.0.2/32", "127.0.0.1/8"]


def test_a_freed_address_is_taken_again_only_after_the_others(seen: dict[str, object]) -> None:
    # .2 is held and .1 was freed: the next after the last taken (.2) wraps to .1.
    assert seen["add_c"]["out"]["ips"] == [{"address": "10.250.0.1/32", "interface": 0}]  # type: ignore[index]


def test_errors_are_the_specifications_json(seen: dict[str, object]) -> None:
    full, no_netns, bad = seen["full"], seen["no_netns"], seen["bad_config"]
    assert full["rc"] == 1 and full["out"]["code"] == 11  # type: ignore[index]
    assert "no free address left in 10.250.0.0/30" in full["out"]["msg"]  # type: ignore[index]
    assert no_netns["rc"] == 1 and no_netns["out"]["code"] == 7  # type: ignore[index]
    assert "CNI_NETNS" in no_netns["out"]["msg"]  # type: ignore[index]
    assert bad["rc"] == 1 and bad["out"]["code"] == 7  # type: ignore[index]
    assert bad["out"]["msg"].startswith("bad network configuration")  # type: ignore[index]
