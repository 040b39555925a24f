"""The demo from start to end: start everything, run the burst, read, report, stop."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from demo.live import LiveView
from demo.load import Phase, ScriptedLoad, burst
from demo.processes import Children, Pod, start_pods, start_prometheus, start_scaler
from demo.readers import DirectPath, PodCounters, PrometheusPath, Readers
from demo.report import summary_lines, write_chart, write_csv
from demo.series import Sample, Summary, summarize

TARGET_UTILIZATION = 0.8  # the ScaledObject's targetUtilization, as in manifests/
WINDOW_S = 5  # the ScaledObject's window, as in manifests/
FIRST_DATA_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Settings:
    duration_s: float = 120.0
    # Times the pods' total refill rate. 4.1 rather than 4: at 4 the step needs exactly
    # 15 replicas of 8/s, and ceil() would flip to 16 on every reading a hair over 120/s.
    step: float = 4.1
    pods: int = 3
    bucket_rate: float = 10.0  # the bucket's capacity is 2 s of that
    scrape_interval_s: float = 15.0
    every_s: float = 1.0
    prometheus_binary: str | None = None  # None: the direct path only
    out_dir: Path = Path("out/demo")

    @property
    def step_per_s(self) -> float:
        return self.step * self.pods * self.bucket_rate

    @property
    def bucket_capacity(self) -> float:
        return 2 * self.bucket_rate

    @property
    def target_per_pod(self) -> float:
        return self.bucket_rate * TARGET_UTILIZATION


@dataclass(frozen=True)
class Running:
    pods: list[Pod]
    readers: Readers


def run(settings: Settings, out: TextIO = sys.stdout) -> Summary:
    """Run the whole demo; every process it starts is stopped before this returns."""
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        work_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="openclaw-demo-")))
        children = stack.enter_context(Children(settings.out_dir / "logs"))
        running = stack.enter_context(start_everything(settings, children, work_dir, out))
        samples, step = drive(settings, children, running, out)
    say(out, f"\nStopped all {len(children.started)} processes it started (hey included).")
    summary = summarize_step(settings, samples, step)
    write_outputs(settings, samples, summary, out)
    return summary


def summarize_step(settings: Settings, samples: list[Sample], step: Phase) -> Summary:
    return summarize(
        samples,
        step_start_s=step.start_s,
        step_end_s=step.end_s,
        step_per_s=settings.step_per_s,
        target_per_pod=settings.target_per_pod,
    )


@contextmanager
def start_everything(
    settings: Settings, children: Children, work_dir: Path, out: TextIO
) -> Iterator[Running]:
    """Pods, scaler and (when there is a binary) Prometheus, with readers for each."""
    with_prometheus = " and Prometheus" if settings.prometheus_binary else ""
    say(
        out,
        f"Starting {settings.pods} rating pods, the rating-scaler{with_prometheus} on 127.0.0.1",
    )
    capacity = settings.bucket_capacity
    pods = start_pods(
        children, settings.pods, bucket_capacity=capacity, bucket_rate=settings.bucket_rate
    )
    for pod in pods:
        say(
            out,
            f"  {pod.name:<16} public 127.0.0.1:{pod.public_port}, admin {pod.admin_address}"
            f", bucket {capacity:g} tokens refilled at {settings.bucket_rate:g}/s",
        )
    scaler = start_scaler(children)
    say(out, f"  rating-scaler    gRPC {scaler.grpc_address}, polls the pods every 1 s")
    prometheus_path = None
    if settings.prometheus_binary:
        prometheus = start_prometheus(
            children,
            settings.prometheus_binary,
            targets=[pod.admin_address for pod in pods],
            scrape_interval_s=settings.scrape_interval_s,
            work_dir=work_dir,
        )
        say(
            out,
            f"  Prometheus       {prometheus.url}, scrapes the pods every "
            f"{settings.scrape_interval_s:g} s",
        )
        prometheus_path = PrometheusPath(prometheus)
    else:
        say(out, "  Prometheus       no `prometheus` binary found: showing the direct path only")
    direct = DirectPath(scaler, pods, window_s=WINDOW_S, target_utilization=TARGET_UTILIZATION)
    try:
        wait_first_data(direct)
        yield Running(pods, Readers(direct, prometheus_path, PodCounters(pods)))
    finally:
        direct.close()


def wait_first_data(direct: DirectPath) -> None:
    deadline = time.monotonic() + FIRST_DATA_TIMEOUT_S
    while direct.read() is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"the scaler had no pod data within {FIRST_DATA_TIMEOUT_S:g} s")
        time.sleep(0.1)


def drive(
    settings: Settings, children: Children, running: Running, out: TextIO
) -> tuple[list[Sample], Phase]:
    """Run the scripted burst, reading everything every `every_s` seconds. Returns the
    samples, and the step as it ran."""
    phases = burst(settings.duration_s, settings.step_per_s)
    step = phases[1]
    say(
        out,
        f"\nThe burst: idle for {step.start_s:g} s, then {step.rate_per_s:g} req/s "
        f"({settings.step:g}x the pods' refill) for {step.seconds:g} s, then idle for "
        f"{settings.duration_s - step.end_s:g} s.\n",
    )
    load = ScriptedLoad(phases, children, running.pods)
    readers = running.readers
    view = LiveView(
        out,
        redraw=out.isatty(),
        prometheus=readers.prometheus is not None,
        duration_s=settings.duration_s,
    )
    samples: list[Sample] = []
    started = time.monotonic()
    for tick in range(int(settings.duration_s / settings.every_s) + 1):
        time.sleep(max(0.0, started + tick * settings.every_s - time.monotonic()))
        now_s = time.monotonic() - started
        phase = load.advance(now_s)
        samples.append(readers.sample(now_s, phase.name, phase.rate_per_s, settings.target_per_pod))
        step_so_far = load.as_run("step")
        summary = None if step_so_far is None else summarize_step(settings, samples, step_so_far)
        view.show(samples[-1], summary)
    return samples, load.as_run("step") or step


def write_outputs(settings: Settings, samples: list[Sample], summary: Summary, out: TextIO) -> None:
    prometheus = settings.prometheus_binary is not None
    csv_path = settings.out_dir / "demo.csv"
    chart_path = settings.out_dir / "demo.png"
    lines = summary_lines(summary, prometheus=prometheus)
    write_csv(samples, csv_path)
    title = (
        f"{settings.pods} rating pods, a step to {settings.step_per_s:g} req/s; "
        f"direct path{' against Prometheus with a ' if prometheus else ' only'}"
        f"{f'{settings.scrape_interval_s:g} s scrape' if prometheus else ''}"
    )
    full_tokens = settings.pods * settings.bucket_capacity
    write_chart(
        samples, summary, chart_path, title=title, prometheus=prometheus, full_tokens=full_tokens
    )
    (settings.out_dir / "summary.txt").write_text("\n".join(lines) + "\n")
    say(out, "\n" + "\n".join(lines))
    if not prometheus:
        say(out, "(no `prometheus` binary: the direct path only; `make system-deps` installs it)")
    say(out, f"\nOutputs in {settings.out_dir}/: demo.csv, demo.png, summary.txt, logs/")


def say(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()
