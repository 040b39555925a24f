"""A real Prometheus scraping one fleet's pods, found through a file it watches.

The scrape configuration uses `file_sd_configs`: the demo rewrites the targets file
(atomically) whenever a pod starts or exits, and Prometheus picks the change up at once
(it watches the file; `refresh_interval` is the backstop). Like a PodMonitor, it scrapes
every pod whose process runs, ready or not, terminating ones included. Configuration
and TSDB live in a folder the caller removes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness import HOST, Child, free_port, wait_http_ok_async
from harness.group import Group

READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Prometheus:
    child: Child
    port: int
    targets_file: Path

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def set_targets(self, addresses: Sequence[str]) -> None:
        write_targets(self.targets_file, addresses)


def config(targets_file: Path, scrape_interval_s: float) -> str:
    """The configuration, as JSON (which is YAML too)."""
    interval_ms = round(scrape_interval_s * 1000)
    scrape = {
        "job_name": "rating-api",
        "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "5s"}],
    }
    return json.dumps(
        {
            "global": {
                "scrape_interval": f"{interval_ms}ms",
                "scrape_timeout": f"{min(interval_ms, 5000)}ms",
            },
            "scrape_configs": [scrape],
        },
        indent=2,
    )


def write_targets(path: Path, addresses: Sequence[str]) -> None:
    """The file_sd targets file, replaced in one rename."""
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps([{"targets": sorted(addresses), "labels": {}}]))
    os.replace(partial, path)


async def start_prometheus(
    children: Group, binary: str, *, work_dir: Path, scrape_interval_s: float
) -> Prometheus:
    targets_file = work_dir / "targets.json"
    write_targets(targets_file, [])
    config_path = work_dir / "prometheus.yml"
    config_path.write_text(config(targets_file, scrape_interval_s))
    port = free_port()
    argv = [
        binary,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={work_dir / 'tsdb'}",
        f"--web.listen-address={HOST}:{port}",
        "--log.level=warn",
    ]
    child = children.spawn("prometheus", argv, {"web": port})
    prometheus = Prometheus(child, port, targets_file)
    await wait_http_ok_async(f"{prometheus.url}/-/ready", child, timeout_s=READY_TIMEOUT_S)
    return prometheus
