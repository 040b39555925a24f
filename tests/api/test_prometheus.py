"""The admin port as Prometheus sees it: promtool's linter and a real Prometheus server."""

from __future__ import annotations

import shutil
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.httpclient import post_json, request
from tests.conftest import RatingPodFactory
from tests.procs import Proc, free_port, spawn, wait_http_ok

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"
SCRAPE_CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: rating-api
    static_configs:
      - targets: ["{target}"]
"""


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Any]:
    """Start a real Prometheus that scrapes `target`; stopped when the test ends."""
    started: list[Proc] = []

    def start(target: str) -> Proc:
        config = tmp_path / "prometheus.yml"
        config.write_text(SCRAPE_CONFIG.format(target=target))
        port = free_port()
        argv = [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]
        proc = spawn("prometheus", argv, tmp_path / "logs", {"web": port})
        started.append(proc)
        wait_http_ok(proc.url("web", "/-/ready"), proc, timeout_s=30)
        return proc

    yield start
    for proc in started:
        proc.stop()


def query(prometheus: Proc, promql: str) -> list[dict[str, Any]]:
    url = prometheus.url("web", "/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    reply = request(url).json()
    assert reply["status"] == "success", reply
    result: list[dict[str, Any]] = reply["data"]["result"]
    return result


def query_until_present(
    prometheus: Proc, promql: str, timeout_s: float = 30.0
) -> list[dict[str, Any]]:
    """Poll until the query has a result; the timeout only bounds a hang."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = query(prometheus, promql)
        if result:
            return result
        time.sleep(0.25)
    raise AssertionError(f"{promql} had no result within {timeout_s}s:\n{prometheus.log()}")


def test_exposition_passes_promtool(rating_pod: RatingPodFactory) -> None:
    pod = rating_pod()
    post_json(pod.url("public", "/v1/rate"), {"items": [{"id": "a", "up": 1, "down": 0}]})
    exposition = request(pod.url("admin", "/metrics")).body
    assert b"openclaw_rating_api_token_bucket_fill" in exposition
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=exposition, capture_output=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_prometheus_scrapes_the_fill_gauge_of_the_pod(
    rating_pod: RatingPodFactory, prometheus: Any
) -> None:
    pod = rating_pod("--bucket-capacity", "8", "--bucket-rate", "0.001")
    for _ in range(10):
        post_json(pod.url("public", "/v1/rate"), {"items": [{"id": "a", "up": 1, "down": 0}]})
    target = f"127.0.0.1:{pod.ports['admin']}"
    server = prometheus(target)
    fill = query_until_present(
        server, f'openclaw_rating_api_token_bucket_fill{{instance="{target}"}}'
    )
    assert fill[0]["metric"]["job"] == "rating-api"
    assert 0.0 <= float(fill[0]["value"][1]) < 1.0  # the bucket was emptied, and it refills slowly
    denied = query_until_present(
        server, f'openclaw_rating_api_requests_total{{instance="{target}",code="429"}}'
    )
    assert float(denied[0]["value"][1]) == 2.0
    health = query(server, f'up{{instance="{target}"}}')
    assert float(health[0]["value"][1]) == 1.0
