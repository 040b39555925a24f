"""The load generator's own account of the load it offers, as JSON over HTTP, for KEDA's
built-in `metrics-api` trigger (the floor fleet, `manifests/overlays/e2e-floor`):

    GET /v1/offered/<fleet>  ->  {"fleet": "floor", "offered_per_s": 123.0}

A fleet is registered with a function giving its rate now (0 before its load starts
and after it ends); 404 (problem+json) for a fleet that is not registered. Listens
on 127.0.0.1 inside the run's network namespace only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = "127.0.0.1"
PORT = 9099  # the e2e-floor overlay's trigger names it
PREFIX = "/v1/offered/"

Rate = Callable[[], float]


class OfferedRates:
    """Serves each registered fleet's offered rate from a thread of its own."""

    def __init__(self, host: str = HOST, port: int = PORT) -> None:
        self.rates: dict[str, Rate] = {}
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), _handler(self))
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])

    def start(self) -> OfferedRates:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def register(self, fleet: str, rate: Rate) -> None:
        with self.lock:
            self.rates[fleet] = rate

    def answer(self, path: str) -> tuple[HTTPStatus, dict[str, object]]:
        fleet = path.removeprefix(PREFIX) if path.startswith(PREFIX) else None
        with self.lock:
            rate = self.rates.get(fleet) if fleet else None
        if fleet is None or rate is None:
            problem = {"type": "about:blank", "title": "Not Found", "status": 404}
            return HTTPStatus.NOT_FOUND, problem | {"detail": f"no offered load for {path}"}
        return HTTPStatus.OK, {"fleet": fleet, "offered_per_s": round(rate(), 3)}


def _handler(rates: OfferedRates) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = rates.answer(self.path.split("?", 1)[0])
            data = json.dumps(body).encode()
            kind = "application/json" if status == HTTPStatus.OK else "application/problem+json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            pass  # KEDA reads it at every HPA sync; nothing worth a line

    return Handler
