"""Real processes for the tests, benchmarks, soak and demo: started, awaited, stopped.

A development tool, not shipped with the services (the wheel holds `api`, `scaler` and `common`).
Everything binds to and talks to 127.0.0.1.

Children (`harness.child`):
    Child(name, argv, log_path, *, ports=, env=, die_with_parent=True, open_files=, cpu=,
          cwd=ROOT, group=False)   group: signals reach its whole process group
        .start() -> Child            spawn (again: the log is appended), no pre-exec hook
        .running / .pid / .popen / .returncode / .starts / .ports / .url(port_name, path)
        .signal(signum)              only while it runs
        .stop(timeout_s) -> int      SIGCONT, SIGTERM, wait, SIGKILL; the exit code
        await .stop_async(timeout_s) -> int
        .ask_to_stop()               SIGCONT, SIGTERM, no wait
        .kill() -> int               SIGKILL and reap
        await .wait_async(timeout_s) -> int | None
        .log() / .log_tail(lines)    the log file's text
    spawn(name, argv, log_path, **options) -> Child   a started Child
    stop_all(children, timeout_s)    all at once, newest first, one shared grace
    StartError(RuntimeError)         did not become ready; `.log_tail`, `.reason`, `.name`

Waiting (`harness.ready`), each failing early with `StartError` when the child exits:
    free_port() -> int
    wait_http_ok(url, child, *, timeout_s, body=None)   urllib; a JSON POST with `body`
    await wait_http_ok_async(url, child, *, timeout_s)
    wait_log_line(child, pattern, *, timeout_s) -> re.Match
    wait_until(child, check, what, timeout_s) / await wait_until_async(...)

Services (`harness.services`), frozen flag sets (None keeps the service's default; free
loopback ports unless given; `host=` and `extra=(more flags,)` on both):
    RatingApi(port=, admin_port=, pod_name=, bucket_capacity=, bucket_rate=, log_level=)
        .argv(), .name, .ports {"public","admin"}, .ready_urls, .rate_url, .admin_address
    RatingScaler(grpc_port=, http_port=, poll_interval_s=, pod_timeout_s=, log_level=)
        .argv(), .name, .ports {"grpc","http"}, .ready_urls, .grpc_target
    RatingActivator(port=, admin_port=, endpoints_file=, hold_timeout_s=, max_held=)
        .argv(), .name, .ports {"public","admin"}, .ready_urls, .public_url, .admin_address
    start(service, log_path, *, name=, env=, cpu=, timeout_s=) -> Child   once ready
    await start_async(...) -> Child

A run's children (`harness.group`):
    Group(log_dir=None, *, one_by_one=False)   .spawn(name, argv, ports) / .start(child)
        .check_all() (ChildDied)  .still_running()  .stop_all() newest first, signals ignored
    component(name, argv, log_path, env=, cwd=) -> Child   a process group, no parent-death signal
    wait_for(what, check, timeout_s, group)     poll, checking the group between polls
Signals (`harness.interrupt`): await until_signal(work) turns SIGINT/SIGTERM into `Interrupted`.
The HPA's algorithm (`harness.hpa`): Autoscaler, HpaSpec, Behavior, as the controller applies them.
The ScaledObject manifest's behavior (`harness.scaledobject`): SCALED_OBJECT_BEHAVIOR, load.
`hey` (`harness.hey`): hey_argv, parse_hey -> HeyResult.
KEDA's calls (`harness.keda_client`): KedaClient, scaled_object_ref, keda_value, read_metric_sync.

Fake pods (`harness.fakepods`): `FakePod`, light admin-port stand-ins served in-process,
or `python -m harness.fakepods --count N` in a process of their own.
Launcher (`harness.launch`): what runs between fork and exec, see its docstring.
"""

from __future__ import annotations

from harness.child import ROOT, Child, StartError, spawn, stop_all
from harness.ready import (
    HOST,
    free_port,
    wait_http_ok,
    wait_http_ok_async,
    wait_log_line,
    wait_until,
    wait_until_async,
)
from harness.services import (
    RatingActivator,
    RatingApi,
    RatingScaler,
    Service,
    start,
    start_async,
)

__all__ = [
    "HOST",
    "ROOT",
    "Child",
    "RatingActivator",
    "RatingApi",
    "RatingScaler",
    "Service",
    "StartError",
    "free_port",
    "spawn",
    "start",
    "start_async",
    "stop_all",
    "wait_http_ok",
    "wait_http_ok_async",
    "wait_log_line",
    "wait_until",
    "wait_until_async",
]
