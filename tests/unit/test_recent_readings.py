"""The bounded store of recently scored readings."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from service.scoring.recent import AmbiguousReadingId, ReadingChunk, RecentReading, RecentReadings


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
    ids: list[str | None] | None = None,
    errors: list[float] | None = None,
    alert: list[bool] | None = None,
    timestamps: list[float] | None = None,
    model: str = "m",
) -> ReadingChunk:
    errs = np.array(errors if errors is not None else [0.5] * count, dtype=np.float64)
    values = np.arange(count * 2, dtype=np.float32).reshape(count, 2)
    c = ReadingChunk.of_request(
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
    # Digits int() refuses: a superscript (isdigit() is true for it) and more than 4,300 digits.
    assert store.get("r0-²") is None and store.get("r0-" + "1" * 5000) is None
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


def single(
    store: RecentReadings,
    clock: Clock,
    index: int,
    *,
    n_sensors: int = 2,
    reading_id: str | None = None,
) -> None:
    store.add(
        ReadingChunk.of_request(
            seq_start=store.reserve(1),
            ids=[reading_id] if reading_id is not None else None,
            stream_id=f"s{index % 3}",
            model="m" if n_sensors == 2 else "wide",
            model_version="1",
            received_at=clock(),
            timestamps=np.array([clock()]),
            errors=np.array([float(index)]),
            squared=np.full((1, n_sensors), float(index), dtype=np.float32),
            values=np.full((1, n_sensors), float(index), dtype=np.float32),
            threshold=100.0,
            threshold_version=1,
            anomaly=np.array([index > 100]),
            alert=np.array([index % 50 == 0]),
        )
    )


def test_single_reading_chunks_are_merged_and_stay_addressable() -> None:
    clock = Clock()
    store = RecentReadings(10_000, 600, clock=clock, id_prefix="r0-")
    for i in range(400):
        clock.now += 1
        client_id = (
            "dup"  # streams s1 and s0
            if i in (10, 300)
            else "again"  # stream s2 twice
            if i in (20, 320)
            else f"c{i}"
            if i % 7 == 0
            else None
        )
        single(store, clock, i, n_sensors=3 if 200 <= i < 205 else 2, reading_id=client_id)
    assert len(store) == 400
    # runs of 128 merged (the second split where the sensor count changes), 16 still single
    assert len(store._chunks) == 1 + 3 + 1 + 16
    for i in (0, 1, 150, 203, 250, 399):
        rid = f"c{i}" if i % 7 == 0 else f"r0-{i}"
        found = store.get(rid)
        assert found is not None and found.error == float(i) and found.reading_id == rid
        assert found.stream_id == f"s{i % 3}" and found.values.shape == ((3,) if i == 203 else (2,))
    assert store.get("r0-7") is None  # that reading carries the client id c7
    again = store.get("again")
    assert again is not None and again.error == 320.0  # reused in one stream: the latest
    with pytest.raises(AmbiguousReadingId) as ambiguous:
        store.get("dup")  # two streams' readings: which one is meant?
    assert ambiguous.value.streams == ["s0", "s1"]
    for stream, error in (("s0", 300.0), ("s1", 10.0)):
        found = store.get("dup", stream)
        assert found is not None and found.error == error and found.stream_id == stream
    assert store.get("dup", "s2") is None
    assert store.get("r0-1", "s1") is not None and store.get("r0-1", "s0") is None
    s1 = store.stream_readings("s1", 0, clock.now, model="m")
    assert [r.error for r in s1] == [
        float(i) for i in range(400) if i % 3 == 1 and not 200 <= i < 205
    ]
    assert [r.error for r in store.alerts(limit=3)] == [350.0, 300.0, 250.0]
    errors, _ = store.scored_errors("wide")
    assert errors.tolist() == [200.0, 201.0, 202.0, 203.0, 204.0]
    clock.now += 300  # cut-off 5100: readings received before it disappear row by row
    assert store.get("r0-98") is None and store.get("r0-101") is not None
    dup = store.get("dup")  # s1's reading is past retention: no longer ambiguous
    assert dup is not None and dup.stream_id == "s0"
    assert min(r.error or 0 for r in store.stream_readings("s2", 0, clock.now)) >= 99


def test_a_client_id_of_several_streams_through_batches_and_eviction() -> None:
    clock = Clock()
    store = RecentReadings(6, 600, clock=clock, id_prefix="r0-")
    chunk(store, clock, 2, stream="a", ids=["7", "8"])
    chunk(store, clock, 2, stream="b", ids=["7", None], errors=[1.5, 0.5])
    with pytest.raises(AmbiguousReadingId):
        store.get("7")
    b = store.get("7", "b")
    assert b is not None and b.error == 1.5
    chunk(store, clock, 3, stream="c", ids=["9", "10", "11"])  # 7 readings: stream a's go
    only = store.get("7")
    assert only is not None and only.stream_id == "b"
    assert store.get("7", "a") is None and store.get("8") is None
    chunk(store, clock, 2, stream="a", ids=["7", "12"])  # a again, b's chunk goes
    again = store.get("7")
    assert again is not None and again.stream_id == "a"


def test_memory_per_single_reading_stays_near_the_data() -> None:
    import tracemalloc

    clock = Clock()
    store = RecentReadings(100_000, 600, clock=clock, id_prefix="r0-")
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(5000):
            single(store, clock, i, n_sensors=50)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # the data itself: two float32 rows of 50 values plus a few scalars ~ 450 bytes
    assert used / 5000 < 700


def request_fields(
    store: RecentReadings,
    clock: Clock,
    count: int,
    *,
    width: int = 2,
    ids: list[str | None] | None = None,
    timestamps: list[float] | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    errs = rng.exponential(size=count)
    return {
        "seq_start": store.reserve(count),
        "ids": ids,
        "stream_id": f"s{seed % 3}",
        "model": f"m{width}",
        "model_version": "1",
        "received_at": clock(),
        "timestamps": None if timestamps is None else np.array(timestamps),
        "errors": errs,
        "squared": rng.exponential(size=(count, width)).astype(np.float32),
        "values": rng.normal(size=(count, width)).astype(np.float32),
        "threshold": 1.0 + seed,
        "threshold_version": seed,
        "anomaly": errs > 1.0,
        "alert": errs > 2.0,
    }


def as_chunk(fields: dict[str, Any]) -> ReadingChunk:
    """The same request stored as a chunk of its own (the receive time fills in)."""
    stamps, received = fields["timestamps"], fields["received_at"]
    size = len(fields["errors"])
    return ReadingChunk.of_request(
        **{
            **fields,
            "timestamps": np.full(size, received)
            if stamps is None
            else np.where(np.isnan(stamps), received, stamps),
        }
    )


def same(got: RecentReading | None, want: RecentReading | None) -> bool:
    if got is None or want is None:
        return got is want
    arrays = ("values", "squared_errors")
    plain = [name for name in RecentReading.__dataclass_fields__ if name not in arrays]
    return all(getattr(got, name) == getattr(want, name) for name in plain) and all(
        np.array_equal(getattr(got, name), getattr(want, name)) for name in arrays
    )


def test_small_requests_wait_and_are_sealed_with_their_neighbours() -> None:
    """Requests below SMALL_CHUNK wait as arrays; every lookup sees them, in sequence
    order, exactly as if each had been stored as its own chunk."""
    clock = Clock()
    pending = RecentReadings(10_000, 600, clock=clock, id_prefix="p-")
    chunked = RecentReadings(10_000, 600, clock=clock, id_prefix="p-")
    sizes = [1, 3, 1, 70, 1, 2] * 30  # small ones around a large one, past MERGE_RUN
    nan = float("nan")
    for i, size in enumerate(sizes):
        clock.now += 0.5
        width = 3 if i % 7 == 3 and size < 64 else 2  # another model's sensor count
        ids = [f"c{i}-{j}" if j % 2 else None for j in range(size)] if i % 5 == 0 else None
        stamps = [clock() - 3 if j % 2 else nan for j in range(size)] if i % 4 == 0 else None
        fields = request_fields(pending, clock, size, width=width, ids=ids, timestamps=stamps,
                                seed=i)  # fmt: skip
        chunked.reserve(size)
        pending.add_request(**fields)
        chunked.add(as_chunk(fields))
        assert len(pending) == len(chunked)
        if i % 9 == 0:  # a lookup in the middle seals what waits
            reading_id = f"p-{sum(sizes[:i])}"
            assert same(pending.get(reading_id), chunked.get(reading_id))
    for seq in range(0, sum(sizes), 7):
        assert same(pending.get(f"p-{seq}"), chunked.get(f"p-{seq}")), seq
    assert pending.get("c5-1") is not None and same(pending.get("c5-1"), chunked.get("c5-1"))
    got_alerts = pending.alerts(limit=10_000, include_anomalies=True)
    want_alerts = chunked.alerts(limit=10_000, include_anomalies=True)
    assert [r.reading_id for r in got_alerts] == [r.reading_id for r in want_alerts]
    assert pending.flagged_share("m2") == chunked.flagged_share("m2")
    errors, squared = pending.scored_errors("m3")
    want_errors, want_squared = chunked.scored_errors("m3")
    assert np.array_equal(errors, want_errors) and np.array_equal(squared, want_squared)


def test_small_requests_keep_the_bound() -> None:
    clock = Clock()
    store = RecentReadings(10, 600, clock=clock, id_prefix="b-")
    for i in range(40):
        store.add_request(**request_fields(store, clock, 1 + i % 3, seed=i))
        assert len(store) <= 10
    newest = store.get(f"b-{sum(1 + i % 3 for i in range(40)) - 1}")
    assert newest is not None and store.get("b-0") is None
