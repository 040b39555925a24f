"""The fleet at zero on the real cluster: `manifests/overlays/e2e-zero` (rating-api at
`minReplicaCount: 0` behind rating-activator, KEDA's `external-push` trigger), run
after the step and the faults while the other fleets idle. It is demo/zero.py's
scenario with the real KEDA, HPA, kubelet and the activator's own slice writer.

The load goes to the public Service `rating-api` by following its EndpointSlices (one,
`rating-api-activator`, written by the activator that holds the Lease), round robin
over the addresses listed, as kube-proxy does: to the activators while no rating pod
is ready, to the rating pods once one is.

In order:
1. idle stays idle: at zero with no traffic the Deployment stays at 0 through
   2 x failureThreshold x pollingInterval (the fallback is configured);
2. a wake-up from one request, then 1 request/s once a pod has been ready for 2 s:
   none of those through the activator (`forwarded_total{held="false"}` stays put);
3. scale to zero under 1 request/s, from KEDA's 0 until 10 s after the last pod has
   gone: every request 200 (a draining pod answers it, or an activator holds it and
   the fleet wakes again);
4. a second wake-up from one request, a third from 100 requests/s for 10 s.
Each wake-up: the first request's send to its answer (`first_answer_s`: its 200, or
a 429 when the requests held beside it spent the pod's bucket first), the first new
pod's creationTimestamp to its Ready condition (`pod_ready_s`, whole seconds, as the
API keeps them), the activators' counters over it (summed over their pods, read on
their pod IPs) and the requests that got no answer (`lost`).
"""

from __future__ import annotations

import asyncio
import datetime
import json
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from kubernetes import client

from e2e.cluster.cluster_dns import Endpoints
from e2e.cluster.kube import Json, as_json
from e2e.cluster.up import ROOT, Cluster, Say, endpoints_of
from e2e.experiment.balanced_load import BODY, CLIENT_IDLE_S, outcome_of_failure

NAMESPACE = "openclaw-rating-zero"
OVERLAY = "e2e-zero"
RATING_PODS = "app.kubernetes.io/name=rating-api"
ACTIVATOR_PODS = "app.kubernetes.io/name=rating-activator"
ADMIN_PORT = 9092  # the activator's /metrics
REQUEST_TIMEOUT_S = 45.0  # past the activator's hold timeout (30 s): a held request gets its answer
READY_FOR_S = 2.0
STEADY_S = 10
GONE_FOR_S = 10.0
BURST_PER_S, BURST_S = 100, 10
WIRED_TIMEOUT_S = 240.0
AT_ZERO_TIMEOUT_S = 180.0
ANSWER_SLACK_S = 1.0  # first_answer_s within pod_ready_s plus this: reported, not failed
METRIC_PREFIX = "openclaw_rating_activator_"
WAKE_COUNTERS = {
    "held": "held_total",
    "forwarded": 'forwarded_total{held="true"}',
    "timed_out": "timed_out_total",
}
NOT_HELD = 'forwarded_total{held="false"}'


def apply(cluster: Cluster) -> None:
    """The overlay, applied beside the other fleets; it settles at zero on its own."""
    cluster.say(f"kubectl apply --server-side -k manifests/overlays/{OVERLAY} (zero path)")
    cluster.apply("-k", str(ROOT / "manifests" / "overlays" / OVERLAY))


@dataclass
class Sent:
    sent_s: float
    status: int | None = None  # None: no answer
    answered_s: float | None = None
    error: str | None = None


@dataclass
class Client:
    """Requests to the public Service, each to the next address its slices list."""

    endpoints: Endpoints
    session: aiohttp.ClientSession
    sent: list[Sent] = field(default_factory=list)
    in_flight: set[asyncio.Task[None]] = field(default_factory=set)
    turn: int = 0

    async def load(self, per_s: int, seconds: int) -> None:
        """`per_s` requests a second for `seconds`, evenly spaced; returns once all are sent."""
        start = time.monotonic()
        for index in range(per_s * seconds):
            await asyncio.sleep(max(0.0, start + index / per_s - time.monotonic()))
            sent = Sent(time.monotonic())
            self.sent.append(sent)
            task = asyncio.create_task(self.one(sent))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def one(self, sent: Sent) -> None:
        ready = self.endpoints()
        if not ready:
            sent.error = "no endpoint"
            return
        self.turn += 1
        host, port = ready[self.turn % len(ready)]
        url = f"http://{host}:{port}/v1/rate"
        headers = {"Content-Type": "application/json"}
        try:
            async with self.session.post(url, data=BODY, headers=headers) as response:
                await response.read()
                sent.status, sent.answered_s = response.status, time.monotonic()
        except (aiohttp.ClientError, OSError, TimeoutError) as error:
            sent.error = f"{outcome_of_failure(error)}: {type(error).__name__}"

    async def settled(self) -> None:
        """Until every request sent has its answer or its error."""
        if self.in_flight:
            await asyncio.wait(set(self.in_flight), timeout=REQUEST_TIMEOUT_S + 5)


def first_answer(sent: list[Sent]) -> dict[str, Any]:
    """The first request's send to its answer from a pod: its 200, or a 429 when the
    requests held beside it spent the new pod's bucket first (they are handed out in
    arrival order, but each goes on its own connection)."""
    head = sent[0] if sent else None
    if head is None or head.answered_s is None or head.status not in (200, 429):
        return {"first_answer_s": None, "first_status": None if head is None else head.status}
    return {"first_answer_s": round(head.answered_s - head.sent_s, 3), "first_status": head.status}


def tally(sent: list[Sent]) -> dict[str, Any]:
    return {
        "sent": len(sent),
        "answered_200": sum(s.status == 200 for s in sent),
        "5xx": sum(s.status is not None and s.status >= 500 for s in sent),
        "lost": sum(s.status is None for s in sent),
        "errors": sorted({s.error for s in sent if s.error})[:5],
    }


@dataclass
class Zero:
    cluster: Cluster
    client: Client
    say: Say

    def pods(self, selector: str) -> list[Json]:
        core = client.CoreV1Api(self.cluster.api)
        found = as_json(
            self.cluster.api, core.list_namespaced_pod(NAMESPACE, label_selector=selector)
        )
        return list(found.get("items") or [])

    def replicas(self) -> int:
        return self.cluster.observer.path_state(NAMESPACE).spec

    def at_zero(self) -> bool:
        return self.replicas() == 0 and not self.pods(RATING_PODS)

    async def until(self, what: str, check: Callable[[], bool], timeout_s: float) -> float:
        """Seconds until `check()` (called off the loop) holds; TimeoutError after `timeout_s`."""
        started = time.monotonic()
        while not await asyncio.to_thread(check):
            self.cluster.procs.check_all()
            if time.monotonic() - started > timeout_s:
                raise TimeoutError(f"zero: {what}: not within {timeout_s:g} s")
            await asyncio.sleep(0.2)
        return time.monotonic() - started

    async def counters(self) -> Counter[str]:
        """The activators' counters, summed over their pods (each read on its pod IP)."""
        totals: Counter[str] = Counter()
        for pod in await asyncio.to_thread(self.pods, ACTIVATOR_PODS):
            address = (pod.get("status") or {}).get("podIP")
            if not address:
                continue
            url = f"http://{address}:{ADMIN_PORT}/metrics"
            timeout = aiohttp.ClientTimeout(total=5.0)
            async with self.client.session.get(url, timeout=timeout) as response:
                totals.update(parse_counters((await response.read()).decode()))
        return totals


def parse_counters(text: str) -> dict[str, float]:
    """`name{labels}` (without the activator's prefix) -> value, from /metrics."""
    found = {}
    for line in text.splitlines():
        if line.startswith(METRIC_PREFIX):
            name, _, value = line[len(METRIC_PREFIX) :].rpartition(" ")
            found[name] = float(value)
    return found


def api_time(text: str) -> float:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def pod_ready_s(pod: Json) -> float | None:
    """The pod's creationTimestamp to its Ready condition, from the API."""
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready" and condition.get("status") == "True":
            created = api_time(pod["metadata"]["creationTimestamp"])
            return api_time(condition["lastTransitionTime"]) - created
    return None


def wired(zero: Zero) -> bool:
    """At zero, every activator ready, and the public slice on the activators."""
    activators = zero.pods(ACTIVATOR_PODS)
    ready = {p["status"]["podIP"] for p in activators if pod_ready_s(p) is not None}
    listed = {host for host, _ in zero.client.endpoints()}
    return zero.at_zero() and len(ready) == len(activators) > 0 and listed == ready


async def idle_stays_idle(zero: Zero) -> dict[str, Any]:
    """At zero with no traffic, through 2 x failureThreshold x pollingInterval."""
    spec = zero.cluster.observer.scaled_object(NAMESPACE)["spec"]
    polling_s = float(spec.get("pollingInterval", 30))
    bound_s = 2 * float(spec["fallback"]["failureThreshold"]) * polling_s
    most, fallback = 0, False
    started = time.monotonic()
    while time.monotonic() - started < bound_s + polling_s:
        zero.cluster.procs.check_all()
        most = max(most, await asyncio.to_thread(zero.replicas))
        condition = await asyncio.to_thread(zero.cluster.observer.condition, NAMESPACE, "Fallback")
        fallback = fallback or condition == "True"
        await asyncio.sleep(1.0)
    watched_s = round(time.monotonic() - started, 1)
    return {"watched_s": watched_s, "bound_s": bound_s, "max_replicas": most, "fallback": fallback}


async def wake(zero: Zero, name: str, per_s: int, seconds: int) -> dict[str, Any]:
    """Load at zero: the first request's wait, the first new pod's start, the counters."""
    before_pods = {p["metadata"]["name"] for p in await asyncio.to_thread(zero.pods, RATING_PODS)}
    before = await zero.counters()
    first = len(zero.client.sent)
    await zero.client.load(per_s, seconds)
    await zero.client.settled()
    after = await zero.counters()
    mine = zero.client.sent[first:]
    new = [
        p
        for p in await asyncio.to_thread(zero.pods, RATING_PODS)
        if p["metadata"]["name"] not in before_pods
    ]
    new.sort(key=lambda p: api_time(p["metadata"]["creationTimestamp"]))
    found: dict[str, Any] = {"name": name, **first_answer(mine)}
    found["pod_ready_s"] = pod_ready_s(new[0]) if new else None
    found |= {key: int(after[metric] - before[metric]) for key, metric in WAKE_COUNTERS.items()}
    return found | tally(mine)


async def steady(zero: Zero) -> tuple[int, dict[str, Any]]:
    """1 request/s once a pod has been ready for READY_FOR_S: how many the activators saw."""
    await zero.until(
        "a rating pod ready", lambda: zero.cluster.observer.path_state(NAMESPACE).ready > 0, 60.0
    )
    await asyncio.sleep(READY_FOR_S)
    before = await zero.counters()
    first = len(zero.client.sent)
    await zero.client.load(1, STEADY_S)
    await zero.client.settled()
    after = await zero.counters()
    return int(after[NOT_HELD] - before[NOT_HELD]), tally(zero.client.sent[first:])


async def scale_to_zero(zero: Zero) -> dict[str, Any]:
    """1 request/s from the moment KEDA sets 0 replicas until GONE_FOR_S after the pods
    it was taking away have gone: each must get its 200."""
    waited_s = await zero.until(
        "KEDA setting 0 replicas", lambda: zero.replicas() == 0, AT_ZERO_TIMEOUT_S
    )
    leaving = {p["metadata"]["name"] for p in await asyncio.to_thread(zero.pods, RATING_PODS)}
    first, started = len(zero.client.sent), time.monotonic()
    gone_s: float | None = None
    woke_again = False
    while gone_s is None or time.monotonic() - started - gone_s < GONE_FOR_S:
        zero.cluster.procs.check_all()
        await zero.client.load(1, 1)
        await asyncio.sleep(1.0)
        left = {p["metadata"]["name"] for p in await asyncio.to_thread(zero.pods, RATING_PODS)}
        woke_again = woke_again or bool(left - leaving)
        if gone_s is None and not left & leaving:
            gone_s = time.monotonic() - started
        if time.monotonic() - started > AT_ZERO_TIMEOUT_S:
            raise TimeoutError(
                f"zero: the scaled-down pods still there after {AT_ZERO_TIMEOUT_S:g} s"
            )
    await zero.client.settled()
    return tally(zero.client.sent[first:]) | {
        "idle_until_zero_s": round(waited_s, 1),
        "pods_leaving": len(leaving),
        "gone_after_s": round(gone_s, 1),
        "woke_again": woke_again,
    }


async def until_zero(zero: Zero) -> float:
    return await zero.until("back at zero, every pod gone", zero.at_zero, AT_ZERO_TIMEOUT_S)


async def scenario(zero: Zero, found: dict[str, Any]) -> None:
    """Fills `found` as it goes, so that a timeout keeps what was measured."""
    say = zero.say
    wired_s = await zero.until(
        "activators ready, fleet at zero", lambda: wired(zero), WIRED_TIMEOUT_S
    )
    say(f"  at zero, the public slice on the activators: {wired_s:.1f} s")
    found["idle_stays_idle"] = await idle_stays_idle(zero)
    say(f"  idle at zero: {found['idle_stays_idle']}")
    found["wakeups"].append(await wake(zero, "one request", 1, 1))
    say(f"  wake-up: {found['wakeups'][-1]}")
    found["through_activator_when_ready"], found["steady"] = await steady(zero)
    say(
        f"  steady 1/s with a pod ready: {found['through_activator_when_ready']} "
        f"through the activators, {found['steady']}"
    )
    found["scale_to_zero"] = await scale_to_zero(zero)
    say(f"  scale to zero under 1/s: {found['scale_to_zero']}")
    say(f"  back at zero after {await until_zero(zero):.1f} s")
    found["wakeups"].append(await wake(zero, "one request again", 1, 1))
    say(f"  wake-up: {found['wakeups'][-1]}")
    say(f"  back at zero after {await until_zero(zero):.1f} s")
    found["wakeups"].append(
        await wake(zero, f"burst {BURST_PER_S}/s for {BURST_S} s", BURST_PER_S, BURST_S)
    )
    say(f"  wake-up: {found['wakeups'][-1]}")


async def measure(cluster: Cluster, say: Say) -> dict[str, Any]:
    found: dict[str, Any] = {"wakeups": []}
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=CLIENT_IDLE_S)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        zero = Zero(cluster, Client(endpoints_of(cluster, NAMESPACE), session), say)
        try:
            await scenario(zero, found)
        except TimeoutError as error:
            found["error"] = str(error)
        await zero.client.settled()
    return found | medians(found["wakeups"])


def medians(wakeups: list[dict[str, Any]]) -> dict[str, float | None]:
    def median(key: str) -> float | None:
        values = [w[key] for w in wakeups if w.get(key) is not None]
        return round(statistics.median(values), 3) if values else None

    return {
        "first_answer_median_s": median("first_answer_s"),
        "pod_ready_median_s": median("pod_ready_s"),
    }


def run(cluster: Cluster, say: Say) -> dict[str, Any]:
    """The scenario; its figures also go to out/e2e/zero.json."""
    say(
        f"\nZero: {NAMESPACE} at minReplicaCount 0 behind rating-activator; "
        "the load follows rating-api's EndpointSlices"
    )
    started = time.monotonic()
    found = asyncio.run(measure(cluster, say))
    found["wall_s"] = round(time.monotonic() - started, 1)
    (cluster.log_dir.parent / "zero.json").write_text(json.dumps(found, indent=2) + "\n")
    for line in report_lines(found):
        say(f"  {line}")
    return found


def report_lines(found: dict[str, Any]) -> list[str]:
    lines = [
        f"{w['name']}: first answer ({w['first_status']}) after {w['first_answer_s']} s "
        f"(the pod's own start {w['pod_ready_s']} s); "
        f"{w['sent']} sent, {w['answered_200']} answered 200, {w['5xx']} 5xx, {w['held']} held, "
        f"{w['forwarded']} forwarded, {w['timed_out']} timed out, {w['lost']} lost"
        for w in found["wakeups"]
    ]
    first, ready = found.get("first_answer_median_s"), found.get("pod_ready_median_s")
    if first is not None and ready is not None:
        verdict = "within" if first <= ready + ANSWER_SLACK_S else "NOT within"
        lines.append(
            f"median first answer {first:.2f} s, median pod start {ready:.2f} s: {verdict} "
            f"{ANSWER_SLACK_S:g} s of it (reported, not a failure)"
        )
    return lines + [
        f"{key}: {found.get(key)}"
        for key in ("through_activator_when_ready", "scale_to_zero", "idle_stays_idle", "wall_s")
    ]


def problems(found: dict[str, Any] | None) -> list[str]:
    """Lost requests, 5xx, traffic through the activator in steady state, or a fleet
    that left zero while idle, fail the run; a slow first answer does not."""
    if found is None:
        return []
    out = [found["error"]] if "error" in found else []
    wakeups = found["wakeups"]
    if len(wakeups) < 3:
        out.append(f"zero: {len(wakeups)} wake-ups measured, not 3")
    for wakeup in wakeups:
        if wakeup["first_answer_s"] is None:
            out.append(f"zero: {wakeup['name']}: the first request got no answer from a pod")
    for part in [*wakeups, found.get("steady"), found.get("scale_to_zero")]:
        if part and (part["lost"] or part["5xx"]):
            out.append(
                f"zero: {part.get('name', 'under load')}: {part['lost']} lost, "
                f"{part['5xx']} 5xx ({part['errors']})"
            )
    leaving = found.get("scale_to_zero")
    if leaving and leaving["answered_200"] != leaving["sent"]:
        out.append(
            f"zero: scale to zero: {leaving['answered_200']} of {leaving['sent']} answered 200"
        )
    if found.get("through_activator_when_ready"):
        out.append(
            f"zero: {found['through_activator_when_ready']} requests through the activator "
            "with a pod ready"
        )
    idle = found.get("idle_stays_idle")
    if idle and idle["max_replicas"]:
        out.append(f"zero: idle at zero, the Deployment went to {idle['max_replicas']} replicas")
    return out
