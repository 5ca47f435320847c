"""The bounded store of recently scored readings."""

from __future__ import annotations

import numpy as np

from service.scoring.recent import ReadingChunk, RecentReadings


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def chunk(
    store: RecentReadings,
    clock: Clock,
    count: int,
    *,
    stream: str = "s1",
    ids: list[str] | None = None,
    errors: list[float] | None = None,
    alert: list[bool] | None = None,
    timestamps: list[float] | None = None,
    model: str = "m",
) -> ReadingChunk:
    errs = np.array(errors if errors is not None else [0.5] * count, dtype=np.float64)
    values = np.arange(count * 2, dtype=np.float32).reshape(count, 2)
    c = ReadingChunk(
        seq_start=store.reserve(count),
        ids=ids,
        stream_id=stream,
        model=model,
        model_version="1",
        received_at=clock(),
        timestamps=np.array(timestamps if timestamps is not None else [clock()] * count),
        errors=errs,
        squared=np.repeat(errs[:, None], 2, axis=1).astype(np.float32),
        values=values,
        threshold=1.0,
        threshold_version=3,
        anomaly=errs > 1.0,
        alert=np.array(alert if alert is not None else [False] * count),
    )
    store.add(c)
    return c


def test_get_by_generated_and_client_id() -> None:
    clock = Clock()
    store = RecentReadings(100, 60, clock=clock, id_prefix="r0-")
    chunk(store, clock, 3)
    chunk(store, clock, 2, ids=["a", "b"], errors=[2.0, float("nan")])
    chunk(store, clock, 4)
    first = store.get("r0-1")
    assert first is not None and first.stream_id == "s1" and first.threshold_version == 3
    np.testing.assert_array_equal(first.values, [2.0, 3.0])
    a = store.get("a")
    assert a is not None and a.error == 2.0 and a.anomaly and a.squared_errors is not None
    b = store.get("b")
    assert b is not None and b.error is None and b.squared_errors is None  # warming up
    assert store.get("r0-3") is None  # that row carries the client's id instead
    last = store.get("r0-8")
    assert last is not None and last.values[0] == 6.0
    assert store.get("r0-9") is None and store.get("nope") is None and store.get("r0-x") is None
    assert len(store) == 9


def test_bounded_by_count_and_retention() -> None:
    clock = Clock()
    store = RecentReadings(5, 60, clock=clock, id_prefix="r0-")
    chunk(store, clock, 3, ids=["x", "y", "z"])
    chunk(store, clock, 3)
    assert len(store) == 3 and store.get("x") is None and store.get("r0-3") is not None
    clock.now += 61
    chunk(store, clock, 1)
    assert len(store) == 1 and store.get("r0-3") is None and store.get("r0-6") is not None


def test_alerts_audit_sample_and_stream_range() -> None:
    clock = Clock()
    store = RecentReadings(1000, 600, clock=clock, id_prefix="r0-")
    chunk(store, clock, 4, alert=[False, True, True, False], errors=[0.2, 1.5, 1.7, 0.4])
    clock.now += 10
    chunk(store, clock, 3, stream="s2", errors=[0.1, 3.0, 0.3])
    alerts = store.alerts()
    assert [r.reading_id for r in alerts] == ["r0-2", "r0-1"]  # newest first
    assert [r.reading_id for r in store.alerts(include_anomalies=True)] == [
        "r0-5",
        "r0-2",
        "r0-1",
    ]
    assert store.alerts(since=clock.now) == []
    sample = store.audit_sample(10, np.random.default_rng(0))
    assert sorted(r.reading_id for r in sample) == ["r0-0", "r0-3", "r0-4", "r0-6"]
    again = store.audit_sample(2, np.random.default_rng(0))
    assert [r.reading_id for r in again] == [
        r.reading_id for r in store.audit_sample(2, np.random.default_rng(0))
    ]
    assert all(not r.anomaly and not r.alert for r in again)
    s2 = store.stream_readings("s2", clock.now - 1, clock.now + 1)
    assert [r.reading_id for r in s2] == ["r0-4", "r0-5", "r0-6"]
    assert store.stream_readings("s1", clock.now - 1, clock.now + 1) == []
    errors, squared = store.scored_errors("m")
    np.testing.assert_allclose(errors, [0.2, 1.5, 1.7, 0.4, 0.1, 3.0, 0.3])
    assert squared.shape == (7, 2)
    assert store.scored_errors("other")[0].size == 0
