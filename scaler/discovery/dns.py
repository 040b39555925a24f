"""`service` targets: each A or AAAA record of a headless Service is one ready pod."""

from __future__ import annotations

import asyncio

import dns.asyncresolver
import dns.exception
import dns.rdatatype
import dns.resolver

from scaler.discovery.contract import DiscoveryError, Unwatched

Resolver = dns.asyncresolver.Resolver


class DnsDiscovery(Unwatched):
    """Each A or AAAA record of a headless Service is one ready pod."""

    def __init__(self, name: str, port: int, resolver: dns.asyncresolver.Resolver) -> None:
        self._name = name if name.endswith(".") else name + "."
        self._port = port
        self._resolver = resolver

    async def addresses(self) -> list[tuple[str, int]]:
        ipv4, ipv6 = await asyncio.gather(self._lookup("A"), self._lookup("AAAA"))
        return [(address, self._port) for address in sorted(set(ipv4)) + sorted(set(ipv6))]

    async def _lookup(self, rdtype: str) -> list[str]:
        try:
            answer = await self._resolver.resolve(self._name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []  # a Service with no ready pods
        except dns.exception.DNSException as exc:
            raise DiscoveryError(f"DNS {rdtype} {self._name}: {exc}") from None
        return [record.to_text() for record in answer]


def make_resolver(server: tuple[str, int] | None, timeout_s: float) -> Resolver:
    """The system's resolver (resolv.conf), or one that asks `server` (host, port) only."""
    if server is None:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [server[0]]
        resolver.port = server[1]
    resolver.lifetime = timeout_s
    resolver.cache = None  # headless records change as pods come and go
    return resolver
