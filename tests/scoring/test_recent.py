"""The bounded store of recently scored readings, fed as production feeds it: one
:class:`ScoredBatch` per scored request."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest

from service.scoring.decision import ALERT, NORMAL, WARMING_UP, WindowMatch
from service.scoring.reading_chunk import RecentReading
from service.scoring.recent import MERGE_RUN, AmbiguousReadingId, RecentReadings
from service.scoring.registry import LoadedModel
from service.scoring.scored import ScoredBatch
from service.scoring.thresholds import ThresholdSnapshot


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def scored_batch(
    store: RecentReadings,
    received_at: float,
    *,
    errors: np.ndarray,
    values: np.ndarray,
    squared: np.ndarray | None = None,
    warming: int = 0,
    stream: str = "s1",
    ids: list[str | None] | None = None,
    alert: list[bool] | np.ndarray | None = None,
    timestamps: np.ndarray | None = None,
    model: str = "m",
    threshold: float = 1.0,
    threshold_version: int = 3,
    version: str = "1",
) -> ScoredBatch:
    """A request of ``len(values)`` readings as the pipeline hands it on: its first
    ``warming`` rows unscored, ``errors`` (and the rest) for the scored rows only; ids as
    the pipeline resolves them (a client's, else the generated one)."""
    count, width = values.shape
    seq_start = store.reserve(count)
    resolved = None
    if ids is not None:
        resolved = [x if x is not None else f"{store.id_prefix}{seq_start + i}"
                    for i, x in enumerate(ids)]  # fmt: skip
    states = np.full(count, WARMING_UP, dtype=np.int8)
    flags = np.asarray(alert if alert is not None else [False] * (count - warming), dtype=bool)
    states[warming:] = np.where(flags, ALERT, NORMAL)
    scored = count - warming
    return ScoredBatch(
        model=cast(LoadedModel, SimpleNamespace(name=model, version=version)),
        stream_id=stream,
        threshold=ThresholdSnapshot(threshold, threshold_version, threshold),
        seq_start=seq_start,
        id_prefix=store.id_prefix,
        reading_ids=resolved,
        received_at=received_at,
        timestamps=timestamps,
        warming=warming,
        history=0,
        values=values,
        errors=errors,
        scores=errors / threshold,
        anomalies=errors > threshold,
        smoothed=errors,
        states=states,
        top_index=np.zeros((scored, 1), dtype=np.intp),
        top_share=np.ones((scored, 1)),
        squared=squared
        if squared is not None
        else np.repeat(errors[:, None], width, axis=1).astype(np.float32),
        reconstruction=np.zeros((scored, width), dtype=np.float32),
        alerts_raised=0,
    )


def chunk(
    store: RecentReadings,
    clock: Clock,
    count: int,
    *,
    stream: str = "s1",
    ids: list[str | None] | None = None,
    errors: list[float] | None = None,
    warming: int = 0,
    alert: list[bool] | None = None,
    model: str = "m",
) -> None:
    """Score ``count`` readings of two sensors (``errors`` for the scored rows)."""
    errs = np.array(errors if errors is not None else [0.5] * (count - warming))
    values = np.arange(count * 2, dtype=np.float32).reshape(count, 2)
    store.add(
        scored_batch(
            store,
            clock(),
            errors=errs,
            values=values,
            warming=warming,
            stream=stream,
            ids=ids,
            alert=alert,
            model=model,
        )  # fmt: skip
    )


def test_get_by_generated_and_client_id() -> None:
    clock = Clock()
    store = RecentReadings(100, 60, clock=clock, id_prefix="r0-")
    chunk(store, clock, 3)
    chunk(store, clock, 2, ids=["b", "a"], warming=1, errors=[2.0])  # b: warming up
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
    """Readings let go for the bound before their retention ended are reported; those
    whose retention ended are not."""
    clock = Clock()
    dropped: list[int] = []
    store = RecentReadings(5, 60, clock=clock, id_prefix="r0-", on_dropped=dropped.append)
    chunk(store, clock, 3, ids=["x", "y", "z"])
    assert store.get("x") is not None  # a lookup seals what waits: x's request alone
    chunk(store, clock, 3)
    assert len(store) == 3 and store.get("x") is None and store.get("r0-3") is not None
    assert dropped == [3]
    clock.now += 61
    chunk(store, clock, 1)
    # a lookup trims what retention dropped (a small request alone does not)
    assert store.get("r0-3") is None and store.get("r0-6") is not None and len(store) == 1
    assert dropped == [3]


def test_alert_pages_resume_below_the_last_page_while_readings_arrive() -> None:
    clock = Clock()
    store = RecentReadings(1000, 600, clock=clock, id_prefix="r0-")
    chunk(store, clock, 6, alert=[True] * 6)
    chunk(store, clock, 70, alert=[i % 2 == 0 for i in range(70)])  # a chunk of its own
    chunk(store, clock, 3, stream="s2", alert=[True, False, True])
    every = [r.reading_id for r in store.alerts(model="m", limit=1000)]
    pages: list[str] = []
    page, before = store.alert_page(model="m", limit=4)
    while True:
        pages += [r.reading_id for r in page]
        chunk(store, clock, 2, alert=[True, True])  # newer alerts never join later pages
        if before is None:
            break
        page, before = store.alert_page(model="m", limit=4, before=before)
    assert pages == every and len(every) == 6 + 35 + 2
    first, _ = store.alert_page(model="m", limit=3, stream_id="s2")
    assert [r.stream_id for r in first] == ["s2", "s2"]


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
    error = np.array([float(index)])
    store.add(
        scored_batch(
            store,
            clock(),
            errors=error,
            values=np.full((1, n_sensors), float(index), dtype=np.float32),
            stream=f"s{index % 3}",
            ids=[reading_id] if reading_id is not None else None,
            alert=[index % 50 == 0],
            model="m" if n_sensors == 2 else "wide",
            threshold=100.0,
            threshold_version=1,
        )
    )


def test_single_readings_are_sealed_in_runs_and_stay_addressable() -> None:
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
    # runs of MERGE_RUN sealed into one chunk each (the second split where the sensor count
    # changes), the last 16 still waiting
    assert MERGE_RUN == 128 and len(store._chunks) == 1 + 3 + 1 and len(store._pending) == 16
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
    assert store.get("8") is not None  # a lookup seals what waits: a's request alone
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
    """Single readings, stored the way the pipeline stores them, cost about their data."""
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


def request(
    store: RecentReadings,
    clock: Clock,
    count: int,
    *,
    width: int = 2,
    ids: list[str | None] | None = None,
    timestamps: list[float] | None = None,
    seed: int = 0,
) -> ScoredBatch:
    rng = np.random.default_rng(seed)
    warming = seed % 2 if count > 1 else 0
    errs = rng.exponential(size=count - warming)
    return scored_batch(
        store,
        clock(),
        errors=errs,
        values=rng.normal(size=(count, width)).astype(np.float32),
        squared=rng.exponential(size=(count - warming, width)).astype(np.float32),
        warming=warming,
        stream=f"s{seed % 3}",
        ids=ids,
        alert=errs > 2.0,
        timestamps=None if timestamps is None else np.array(timestamps),
        model=f"m{width}",
        threshold=1.0 + seed,
        threshold_version=seed,
    )


def same(got: RecentReading | None, want: RecentReading | None) -> bool:
    if got is None or want is None:
        return got is want
    arrays = ("values", "squared_errors", "above_reconstruction")
    plain = [name for name in RecentReading.__dataclass_fields__ if name not in arrays]
    return all(getattr(got, name) == getattr(want, name) for name in plain) and all(
        np.array_equal(getattr(got, name), getattr(want, name)) for name in arrays
    )


def test_small_requests_wait_and_are_sealed_with_their_neighbours() -> None:
    """Requests below SMALL_CHUNK wait as they came; every lookup sees them, in sequence
    order, exactly as if each had been sealed into a chunk of its own (as a lookup after
    every request does)."""
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
        batch = request(pending, clock, size, width=width, ids=ids, timestamps=stamps, seed=i)
        chunked.reserve(size)
        pending.add(batch)
        chunked.add(batch)
        chunked.get("p-none")  # seals this request alone
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
    assert pending.flagged_share("m2", "1") == chunked.flagged_share("m2", "1")
    errors, squared = pending.scored_errors("m3")
    want_errors, want_squared = chunked.scored_errors("m3")
    assert np.array_equal(errors, want_errors) and np.array_equal(squared, want_squared)


def test_small_requests_keep_the_bound() -> None:
    clock = Clock()
    store = RecentReadings(10, 600, clock=clock, id_prefix="b-")
    for i in range(40):
        store.add(request(store, clock, 1 + i % 3, seed=i))
        assert len(store) <= 10
    newest = store.get(f"b-{sum(1 + i % 3 for i in range(40)) - 1}")
    assert newest is not None and store.get("b-0") is None


def test_a_chunk_keeps_each_requests_signs_and_windows() -> None:
    """Requests sealed together keep their own: which sensors read above the reconstruction
    (none known while warming up or when the reply computed none), and their windows."""
    clock = Clock()
    store = RecentReadings(10_000, 600, clock=clock, id_prefix="p-")
    rng = np.random.default_rng(3)
    shown = scored_batch(store, clock(), errors=np.ones(2), values=np.ones((3, 9), np.float32),
                         warming=1)  # fmt: skip
    shown = replace(shown, reconstruction=rng.normal(1.0, 1.0, (2, 9)).astype(np.float32))
    hidden = scored_batch(store, clock(), errors=np.ones(1), values=np.ones((1, 9), np.float32))
    hidden = replace(
        hidden, reconstruction=np.empty((0, 9), np.float32), maintenance=WindowMatch(4, None)
    )
    windowed = scored_batch(store, clock(), errors=np.ones(1), values=np.ones((1, 9), np.float32))
    windowed = replace(windowed, maintenance=WindowMatch(None, 7))
    for batch in (shown, hidden, windowed):
        store.add(batch)
    readings = [store.get(f"p-{seq}") for seq in range(5)]
    assert all(r is not None for r in readings)
    first, second, third, suppressed, excluded = cast(list[RecentReading], readings)
    assert first.above_reconstruction is None  # warming up
    for got, row in ((second, 0), (third, 1)):
        want = np.ones(9, np.float32) >= shown.reconstruction[row]
        assert got.above_reconstruction is not None
        assert got.above_reconstruction.tolist() == want.tolist()
    assert suppressed.above_reconstruction is None
    assert (suppressed.suppressed_by, suppressed.excluded_by) == (4, None)
    assert excluded.above_reconstruction is not None and excluded.above_reconstruction.all()
    assert (excluded.suppressed_by, excluded.excluded_by) == (None, 7)
    assert (first.suppressed_by, first.excluded_by) == (None, None)


def test_exceedances_count_each_streams_readings_above_a_threshold() -> None:
    """Per stream of one model version: the retained scored readings and those above the
    threshold, by error or by smoothed score (kept over the threshold of its time, so put
    back in the error's units)."""
    clock = Clock()
    store = RecentReadings(10_000, 600, clock=clock, id_prefix="e-")
    first = scored_batch(store, clock(), errors=np.array([0.5, 1.5, 2.5]),
                         values=np.ones((4, 2), np.float32), warming=1, stream="a",
                         threshold=2.0)  # fmt: skip
    store.add(replace(first, smoothed=np.array([0.5, 1.0, 1.5])))  # 1.0, 2.0, 3.0 in units
    store.add(scored_batch(store, clock(), errors=np.array([3.0]), values=np.ones((1, 2)),
                           stream="b"))  # fmt: skip
    store.add(scored_batch(store, clock(), errors=np.array([9.0]), values=np.ones((1, 2)),
                           stream="a", model="other"))  # fmt: skip
    assert sorted(store.exceedances("m", "1", 1.2, smoothed=False)) == [(1, 1), (3, 2)]
    assert sorted(store.exceedances("m", "1", 2.5, smoothed=True)) == [(1, 1), (3, 1)]
    assert store.exceedances("m", "2", 1.2, smoothed=False) == []


def test_the_flagged_share_is_of_one_model_version() -> None:
    """After a reload the retained readings of the version before were flagged by another
    model and threshold: they do not weigh the new version's labels."""
    clock = Clock()
    store = RecentReadings(10_000, 600, clock=clock, id_prefix="f-")
    store.add(scored_batch(store, clock(), errors=np.ones(4), values=np.ones((4, 2)),
                           alert=[True, True, True, False]))  # fmt: skip
    store.add(scored_batch(store, clock(), errors=np.ones(4), values=np.ones((4, 2)),
                           alert=[True, False, False, False], version="2"))  # fmt: skip
    assert store.flagged_share("m", "1") == 0.75
    assert store.flagged_share("m", "2") == 0.25
    assert store.flagged_share("m", "3") is None
