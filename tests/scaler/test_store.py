"""SeriesStore: each poller's table, and a pod new to one table seeded from the others."""

from __future__ import annotations

from scaler.bucket_state import BucketState
from scaler.series import PodSeries
from scaler.store import SeriesStore

ADDRESS = "10.0.0.1:9090"


def answered(at: float, requested: float) -> PodSeries:
    series = PodSeries(ADDRESS)
    state = BucketState("pod", "boot", 10.0, 100.0, 50.0, 50.0, requested, 0.0)
    series.observe(state, now=at, keep_s=5.0)
    return series


def test_a_pod_nobody_polled_starts_empty() -> None:
    store = SeriesStore()
    store.open()[ADDRESS] = PodSeries(ADDRESS)  # listed, never answered: nothing to copy
    series = store.new_series(ADDRESS)
    assert (series.address, series.state, list(series.samples)) == (ADDRESS, None, [])


def test_a_new_table_starts_from_a_copy_of_the_freshest_series() -> None:
    store = SeriesStore()
    older, newer = store.open(), store.open()
    older[ADDRESS], newer[ADDRESS] = answered(1.0, 100.0), answered(2.0, 200.0)
    series = store.new_series(ADDRESS)
    assert series.state is not None and series.state.requested_total == 200.0
    assert series is not newer[ADDRESS] and series.samples is not newer[ADDRESS].samples


def test_a_closed_table_is_read_no_more() -> None:
    store = SeriesStore()
    table = store.open()
    table[ADDRESS] = answered(1.0, 100.0)
    store.close(table)
    assert store.new_series(ADDRESS).state is None
    assert table[ADDRESS].state is not None  # closing leaves the table itself alone
