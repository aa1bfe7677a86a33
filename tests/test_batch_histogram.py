"""A histogram observed a batch at a time reads exactly like prometheus_client's own
Histogram fed the same values one by one."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Histogram, generate_latest

from hub.metrics import BatchHistogram

BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
lags = st.floats(min_value=0.0, max_value=1000.0)


def exposition(collector) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(collector)
    lines = generate_latest(registry).decode().splitlines()
    samples = (line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))
    return {name: float(value) for name, value in samples if "_created" not in name}


@given(batches=st.lists(st.lists(lags | st.sampled_from(BUCKETS), max_size=50), max_size=5))
def test_batches_read_like_one_observe_per_value(batches):
    registry = CollectorRegistry()
    one_by_one = Histogram("lag_seconds", "lag", buckets=BUCKETS, registry=registry)
    batched = BatchHistogram("lag_seconds", "lag", BUCKETS, registry=None)
    for batch in batches:
        for value in batch:
            one_by_one.observe(value)
        batched.observe_many(batch)
    expected, got = exposition(one_by_one), exposition(batched)
    assert expected.keys() == got.keys()
    for name, value in expected.items():
        assert abs(got[name] - value) <= 1e-9 * max(1.0, abs(value)), name
