"""Finding a target's pods: the `Discovery` contract and the one place that chooses.

A target's pods come from one of three discoveries, each a module here: `endpoints`
targets are a fixed list (`static.py`), `service` targets ask DNS for a headless
Service's records (`dns.py`), `endpointSlices` targets list and watch the Kubernetes
API (`endpointslices.py`). All keep the contract of `contract.py`, and `choose.py`
(`Discoveries`) is the one place that decides which a target gets. The rest of the
scaler imports this package only, never its modules.
"""

from __future__ import annotations

from scaler.discovery.choose import Discoveries
from scaler.discovery.contract import Discovery, DiscoveryError

__all__ = ["Discoveries", "Discovery", "DiscoveryError"]
