"""The cluster DNS stand-in's records, and its answers over real UDP on 127.0.0.1."""

from __future__ import annotations

import socket
from typing import Any

from dnslib import DNSRecord
from dnslib.server import DNSServer

from e2e.cluster.cluster_dns import Records, _Resolver


def piece(*endpoints: tuple[str, bool], port: int = 8080) -> dict[str, Any]:
    return {
        "ports": [{"name": "http", "port": port}],
        "endpoints": [{"addresses": [a], "conditions": {"ready": r}} for a, r in endpoints],
    }


def test_headless_names_give_ready_addresses_and_cluster_ips_their_ip() -> None:
    records = Records()
    records.set_service("ns", "headless", "None")
    records.set_slice("ns", "headless", "a", piece(("10.244.0.2", True), ("10.244.0.3", False)))
    records.set_slice("ns", "headless", "b", piece(("10.244.0.4", True)))
    records.set_service("ns", "plain", "10.96.0.9")
    assert records.lookup("headless.ns.svc.cluster.local.") == ["10.244.0.2", "10.244.0.4"]
    assert records.lookup("plain.ns.svc.cluster.local") == ["10.96.0.9"]
    assert records.lookup("missing.ns.svc.cluster.local") is None
    assert records.lookup("example.org") is None
    assert records.endpoints("ns", "headless", "http") == [
        ("10.244.0.2", 8080),
        ("10.244.0.4", 8080),
    ]
    records.drop_slice("ns", "headless", "a")
    assert records.lookup("headless.ns.svc.cluster.local") == ["10.244.0.4"]


def test_answers_over_udp() -> None:
    records = Records()
    records.set_service("ns", "svc", None)
    records.set_slice("ns", "svc", "a", piece(("10.244.0.2", True)))
    server = DNSServer(_Resolver(records), address="127.0.0.1", port=0)
    server.start_thread()
    try:
        port = server.server.server_address[1]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(5)
            for name, expected in (
                ("svc.ns.svc.cluster.local", ["10.244.0.2"]),
                ("x.ns.svc.cluster.local", []),
            ):
                sock.sendto(DNSRecord.question(name).pack(), ("127.0.0.1", port))
                answer = DNSRecord.parse(sock.recv(4096))
                assert [str(rr.rdata) for rr in answer.rr] == expected
    finally:
        server.stop()
