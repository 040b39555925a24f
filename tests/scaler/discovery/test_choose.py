"""Which discovery each kind of target gets, and what is made only when first needed."""

from __future__ import annotations

from scaler.discovery import Discoveries
from scaler.discovery.dns import DnsDiscovery
from scaler.discovery.endpointslices import EndpointSliceDiscovery
from scaler.discovery.static import StaticDiscovery
from scaler.target_key import TargetKey

ENDPOINTS = TargetKey(None, (("127.0.0.1", 9000),), 9090)
SERVICE = TargetKey("rating.edge.svc.cluster.local", (), 9090)
SLICES = TargetKey(None, (), 9090, endpoint_slices="edge/rating-api")


def discoveries() -> Discoveries:
    return Discoveries(kubeconfig=None, dns_server=("127.0.0.1", 53), dns_timeout_s=1.0)


async def test_each_kind_of_target_gets_its_discovery() -> None:
    chosen = discoveries()
    try:
        assert isinstance(chosen.for_target(ENDPOINTS), StaticDiscovery)
        assert isinstance(chosen.for_target(SERVICE), DnsDiscovery)
        assert isinstance(chosen.for_target(SLICES), EndpointSliceDiscovery)
        assert await chosen.for_target(ENDPOINTS).addresses() == [("127.0.0.1", 9000)]
    finally:
        await chosen.close()


async def test_the_resolver_is_made_once_and_only_for_a_service() -> None:
    chosen = discoveries()
    try:
        chosen.for_target(ENDPOINTS)
        assert chosen._resolver is None  # no resolv.conf read for a fixed list
        chosen.for_target(SERVICE)
        resolver = chosen._resolver
        chosen.for_target(SERVICE)
        assert resolver is not None and chosen._resolver is resolver
        assert (resolver.nameservers, resolver.port) == (["127.0.0.1"], 53)
    finally:
        await chosen.close()
