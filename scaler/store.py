"""The pod series of every target: what the pollers write and the aggregates are made of.

Each poller opens one table (pod address -> `PodSeries`) and is the only writer of
it. A pod new to a table starts from the freshest series any other table keeps of
the same pod: a ScaledObject whose `endpoints` list changes names a new target, and
its pods that were polled before keep their rate instead of starting from nothing.
The copy is independent, so two targets never write the same series.
"""

from __future__ import annotations

from scaler.series import PodSeries

PodTable = dict[str, PodSeries]


class SeriesStore:
    def __init__(self) -> None:
        self._tables: list[PodTable] = []

    def open(self) -> PodTable:
        """A new, empty table for one poller; it stays readable until `close`."""
        table: PodTable = {}
        self._tables.append(table)
        return table

    def close(self, table: PodTable) -> None:
        self._tables = [open_table for open_table in self._tables if open_table is not table]

    def new_series(self, address: str) -> PodSeries:
        """The series a table starts for a pod it has not seen: a copy of the freshest
        series another table keeps of that pod, or an empty one."""
        found = (table.get(address) for table in self._tables)
        known = [s for s in found if s is not None and s.state is not None]
        freshest = max(known, key=lambda s: s.last_ok_at, default=None)
        return PodSeries(address) if freshest is None else freshest.copy()
