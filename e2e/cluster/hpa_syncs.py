"""When the real HPA controller synced each HPA, and with what tolerances, read from
kube-controller-manager's own log (`--vmodule=horizontal=4`: one "Proposing desired
replicas" line per metric and sync, with the tolerances it applies). Pure parsing.

The HPA only writes its status when something changed, so the API cannot tell when
an idle HPA synced; the log line is written at every sync, after the metric was read.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

_HEADER = re.compile(r"^[IWE](\d{2})(\d{2}) (\d{2}):(\d{2}):(\d{2}\.\d+)\s")
_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
MESSAGE = '"Proposing desired replicas"'


@dataclass(frozen=True)
class Sync:
    wall_s: float  # Unix time, from klog's header (UTC, as this run's processes log)
    namespace: str
    desired: int
    tolerances: str


def wall_time(month: int, day: int, hms: tuple[int, int, float], year: int) -> float:
    hour, minute, second = hms
    whole = calendar.timegm((year, month, day, hour, minute, 0, 0, 0, 0))
    return whole + second


def parse_line(line: str, year: int) -> Sync | None:
    header = _HEADER.match(line)
    if header is None or MESSAGE not in line:
        return None
    fields = {key: value.strip('"') for key, value in _FIELD.findall(line[header.end() :])}
    target = fields.get("scaleTarget", "").split("/")  # Deployment/<namespace>/<name>
    if len(target) != 3 or not fields.get("desiredReplicas", "").isdigit():
        return None
    month, day, hour, minute = (int(header.group(i)) for i in range(1, 5))
    wall_s = wall_time(month, day, (hour, minute, float(header.group(5))), year)
    return Sync(wall_s, target[1], int(fields["desiredReplicas"]), fields.get("tolerances", ""))


def parse(lines: Iterable[str], year: int | None = None) -> list[Sync]:
    year = time.gmtime().tm_year if year is None else year
    return [sync for line in lines if (sync := parse_line(line, year)) is not None]


def of(syncs: Sequence[Sync], namespace: str) -> list[Sync]:
    return [s for s in syncs if s.namespace == namespace]


def first_after(syncs: Sequence[Sync], wall_s: float) -> Sync | None:
    return min((s for s in syncs if s.wall_s >= wall_s), key=lambda s: s.wall_s, default=None)
