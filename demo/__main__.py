"""`python -m demo`: one rating-api on loopback, a rated batch, then a burst until it says 429.

It starts a real `rating-api` process on free ports, prints what it answers, and stops
it again, on Ctrl-C too. Later the demo grows into the whole autoscaling loop.
"""

from __future__ import annotations

import argparse
import http.client
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SAMPLE_BATCH: dict[str, Any] = {
    "confidence": 0.95,
    "items": [
        {"id": "agent-planner", "up": 42, "down": 7},
        {"id": "agent-newcomer", "up": 3, "down": 0},
        {"id": "agent-spammer", "up": 10, "down": 90},
        {"id": "skill-search", "stars": [25, 20, 75, 80, 60]},
        {"id": "skill-fresh", "stars": [0, 0, 0, 0, 2], "prior": {"mean": 3.5, "weight": 10}},
    ],
}
RATE_LIMIT_HEADERS = ("Retry-After", "RateLimit-Policy", "RateLimit", "Content-Type")


@dataclass(frozen=True)
class RatingApi:
    """A running rating-api process and where to reach it."""

    process: subprocess.Popen[bytes]
    public_port: int
    admin_port: int
    log_path: Path


@dataclass(frozen=True)
class Reply:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    body: bytes


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        with rating_api(args.bucket_capacity, args.bucket_rate) as api:
            show_ratings(api)
            show_burst_until_429(api, args.max_burst)
            show_bucket(api)
    except KeyboardInterrupt:
        print("\ninterrupted: the rating-api was stopped")
        return 130
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--bucket-capacity", type=float, default=10, help="burst size (default 10)")
    parser.add_argument(
        "--bucket-rate", type=float, default=2, help="refill per second (default 2)"
    )
    parser.add_argument("--max-burst", type=int, default=1000, help="most requests in the burst")
    return parser.parse_args(argv)


@contextmanager
def rating_api(capacity: float, rate: float) -> Iterator[RatingApi]:
    """Start `python -m api` on free loopback ports; SIGTERM it on the way out."""
    public_port, admin_port = free_port(), free_port()
    log_path = Path(tempfile.mkdtemp(prefix="openclaw-demo-")) / "rating-api.log"
    argv = [
        sys.executable, "-m", "api",
        "--host", "127.0.0.1",
        "--port", str(public_port),
        "--admin-port", str(admin_port),
        "--pod-name", "demo-pod",
        "--bucket-capacity", str(capacity),
        "--bucket-rate", str(rate),
    ]  # fmt: skip
    heading(f"Starting rating-api on 127.0.0.1:{public_port} (admin {admin_port})")
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    api = RatingApi(process, public_port, admin_port, log_path)
    try:
        wait_ready(api)
        print(startup_line(api))
        yield api
    finally:
        stop(api)


def show_ratings(api: RatingApi) -> None:
    heading("POST /v1/rate with a sample batch")
    reply = call(api.public_port, "POST", "/v1/rate", SAMPLE_BATCH)
    print(f"HTTP {reply.status} {reply.reason}   RateLimit: {reply.headers['RateLimit']}\n")
    print(f"{'id':<16} {'kind':<6} {'count':>6} {'average/up share':>17} {'lower bound':>12}")
    for rating in json.loads(reply.body)["ratings"]:
        middle = rating["average"] if rating["kind"] == "stars" else rating["up_share"]
        print(
            f"{rating['id']:<16} {rating['kind']:<6} {rating['count']:>6} "
            f"{number(middle):>17} {number(rating['lower_bound']):>12}"
        )
    print("\nRank by the lower bound: it rewards many good votes over a few.")


def show_burst_until_429(api: RatingApi, max_burst: int) -> None:
    heading("A burst of requests until the token bucket is empty")
    small_batch = {"items": [{"id": "agent-planner", "up": 42, "down": 7}]}
    for sent in range(1, max_burst + 1):
        reply = call(api.public_port, "POST", "/v1/rate", small_batch)
        if reply.status == 429:
            print(f"{sent - 1} requests answered 200, then:\n")
            print(f"HTTP {reply.status} {reply.reason}")
            for name in RATE_LIMIT_HEADERS:
                print(f"{name}: {reply.headers[name]}")
            print()
            print(json.dumps(json.loads(reply.body), indent=2))
            return
    print(f"no 429 after {max_burst} requests: the bucket refills faster than this loop sends")


def show_bucket(api: RatingApi) -> None:
    heading("GET /v1/bucket on the admin port: what the scaler reads")
    reply = call(api.admin_port, "GET", "/v1/bucket")
    print(json.dumps(json.loads(reply.body), indent=2))


def call(port: int, method: str, path: str, payload: object | None = None) -> Reply:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = None if payload is None else json.dumps(payload).encode()
        headers = {} if payload is None else {"Content-Type": "application/json"}
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        return Reply(response.status, response.reason, response.headers, response.read())
    finally:
        connection.close()


def wait_ready(api: RatingApi, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if api.process.poll() is not None:
            raise SystemExit(f"rating-api exited early:\n{api.log_path.read_text()}")
        try:
            if call(api.public_port, "GET", "/readyz").status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"rating-api was not ready within {timeout_s} s; log: {api.log_path}")


def stop(api: RatingApi) -> None:
    heading("Stopping rating-api (SIGTERM)")
    if api.process.poll() is None:
        api.process.send_signal(signal.SIGTERM)
    try:
        code = api.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        api.process.kill()
        code = api.process.wait()
    print(f"rating-api exited with {code}; its log: {api.log_path}")


def startup_line(api: RatingApi) -> str:
    for line in api.log_path.read_text().splitlines():
        if "rating-api starting:" in line:
            return line.split("rating-api starting: ", 1)[1]
    return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def heading(text: str) -> None:
    print(f"\n== {text}")


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


if __name__ == "__main__":
    sys.exit(main())
