"""A real DNS server on 127.0.0.1 (dnslib) whose A/AAAA records tests change at will."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dnslib import AAAA, QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSServer


class Records(BaseResolver):  # type: ignore[misc]
    """name -> addresses; answers like a headless Service: one record per ready pod."""

    def __init__(self) -> None:
        self.names: dict[str, list[str]] = {}
        self.failing = False
        self._lock = threading.Lock()

    def set(self, name: str, addresses: list[str]) -> None:
        with self._lock:
            self.names[name.rstrip(".").lower()] = list(addresses)

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        if self.failing:
            reply.header.rcode = RCODE.SERVFAIL
            return reply
        name = str(request.q.qname).rstrip(".").lower()
        with self._lock:
            addresses = self.names.get(name)
        if addresses is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        qtype = QTYPE[request.q.qtype]
        for address in addresses:
            if qtype == "A" and ":" not in address:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(address), ttl=5))
            elif qtype == "AAAA" and ":" in address:
                reply.add_answer(RR(request.q.qname, QTYPE.AAAA, rdata=AAAA(address), ttl=5))
        return reply


class _QuietLogger:
    def __getattr__(self, _: str) -> object:
        return lambda *args, **kwargs: None


@contextmanager
def dns_server() -> Iterator[tuple[Records, int]]:
    records = Records()
    server = DNSServer(records, port=0, address="127.0.0.1", logger=_QuietLogger())
    server.start_thread()
    try:
        yield records, server.server.server_address[1]
    finally:
        server.stop()
