"""The scaler's memory with 10,000 pods polled, and after it forgets them.

`python -m scaler` (its default --poll-workers, `--forget-after 5`) beside fake pods in
processes of 5,000 each; two ScaledObjects of 5,000 pods each (a trigger names at most
5,000) are asked for every second for `--polled` seconds, then no more. Prints the
RSS of the scaler's main process and of its workers (from /proc): before any target,
while polling, and every 10 s after the last call until `--after` seconds, with the
targets and workers `/metrics` shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import uvloop

from bench._scaler_procs import cpu_noise, endpoints_metadata, fake_pods
from harness import HOST, spawn
from harness.keda_client import KedaClient, metrics_request, scaled_object_ref
from harness.launch import raise_open_files
from harness.machine import machine
from harness.ready import free_port, wait_http_ok

PER_TARGET = 5000


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench scaler_memory", description=__doc__)
    parser.add_argument("--pods", type=int, default=10_000, help="pods, in targets of 5,000")
    parser.add_argument("--polled", type=float, default=30.0, help="seconds of polling")
    parser.add_argument("--after", type=float, default=60.0, help="seconds watched after")
    parser.add_argument("--poll-workers", type=int, help="the scaler's (default: its own)")
    args = parser.parse_args(argv)
    raise_open_files(2 * args.pods + 256)
    noise = cpu_noise([0, 1])
    bound_s = args.polled + args.after + 120
    with contextlib.ExitStack() as stack:
        parts = [
            stack.enter_context(fake_pods(size, demand_per_s=10.0, seconds=bound_s, core=None))
            for size in [PER_TARGET] * (args.pods // PER_TARGET)
        ]
        grpc_port, http_port = free_port(), free_port()
        argv_scaler = [
            sys.executable, "-m", "scaler", "--host", HOST, "--grpc-port", str(grpc_port),
            "--http-port", str(http_port), "--forget-after", "5", "--log-level", "warning",
        ]  # fmt: skip
        if args.poll_workers is not None:
            argv_scaler += ["--poll-workers", str(args.poll_workers)]
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-memory-"))
        child = spawn("scaler", argv_scaler, Path(tmp) / "scaler.log", open_files=4096)
        stack.callback(child.stop)
        wait_http_ok(f"http://{HOST}:{http_port}/healthz", child, timeout_s=30)
        ports = [part.ports for part in parts]
        rows = uvloop.run(watch(child.pid, grpc_port, http_port, ports, args))
    print(f"\n{machine()}. CPU noise just before: {noise}.\n")
    print("| moment | main RSS MiB | workers RSS MiB | targets | workers |")
    print("|---|---:|---:|---:|---:|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


async def watch(
    pid: int, grpc_port: int, http_port: int, ports: list[list[int]], args: argparse.Namespace
) -> list[list[str]]:
    rows = [sample("before any target", pid, http_port)]
    client = KedaClient.insecure(f"{HOST}:{grpc_port}")
    requests = [
        metrics_request(
            scaled_object_ref(f"so-{index}", "edge", endpoints_metadata(share)), "openclaw-demand"
        )
        for index, share in enumerate(ports)
    ]
    end = time.monotonic() + args.polled
    while time.monotonic() < end:
        for request in requests:
            with contextlib.suppress(Exception):
                await client.get_metrics(request, timeout_s=5)
        await asyncio.sleep(1.0)
    rows.append(
        sample(f"{len(ports) * PER_TARGET} pods polled for {args.polled:g} s", pid, http_port)
    )
    await client.close()
    started = time.monotonic()
    while (since := time.monotonic() - started) < args.after:
        await asyncio.sleep(10.0)
        rows.append(sample(f"{since + 10:.0f} s after the last call", pid, http_port))
    return rows


def sample(moment: str, pid: int, http_port: int) -> list[str]:
    main_rss = rss_mib(pid)
    workers = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    workers_rss = sum(rss_mib(worker) for worker in workers)
    text = urllib.request.urlopen(f"http://{HOST}:{http_port}/metrics", timeout=5).read().decode()
    return [
        moment,
        f"{main_rss:.0f}",
        f"{workers_rss:.0f} ({len(workers)})",
        gauge(text, "openclaw_rating_scaler_targets"),
        gauge(text, "openclaw_rating_scaler_workers"),
    ]


def gauge(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return line.split()[1]
    return "-"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
