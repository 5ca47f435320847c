"""Vectorised decisions and bounded stream state."""

from __future__ import annotations

import numpy as np
import pytest

from service.scoring.decision import AlertDebouncer, decide, reading_errors, top_contributors
from service.scoring.rolling import RollingQuantiles
from service.scoring.smoothing import RollingMean
from service.scoring.streams import (
    StreamState,
    StreamStates,
    guarded_windows_of,
    history_rows,
    input_windows,
)


def test_decide_matches_brute_force() -> None:
    rng = np.random.default_rng(3)
    squared = rng.exponential(size=(64, 12)).astype(np.float32)
    out = decide(squared, threshold=0.8, top_k=4)
    errors = squared.astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(out.errors, errors)
    np.testing.assert_allclose(out.scores, errors / 0.8)
    assert (out.anomalies == (errors > 0.8)).all()
    for row in range(64):
        want = np.argsort(-squared[row], kind="stable")[:4]
        assert sorted(out.top_index[row].tolist()) == sorted(want.tolist())
        assert (np.diff(out.top_share[row]) <= 0).all()
        total = squared[row].astype(np.float64).sum()
        np.testing.assert_allclose(out.top_share[row], squared[row][out.top_index[row]] / total)


@pytest.mark.parametrize("n_sensors", [1, 7, 52, 129, 300])
def test_a_readings_error_is_the_same_to_the_bit_alone_in_a_batch_and_in_training(
    n_sensors: int,
) -> None:
    """Training sets thresholds on reading_errors; the service decides a single reading and a
    batch on its own sums: all three must agree exactly, or a calibration reading at the
    threshold flags in the service (past 128 sensors numpy's pairwise sum blocks)."""
    rng = np.random.default_rng(n_sensors)
    squared = rng.exponential(size=(40, n_sensors)).astype(np.float32)
    expected = reading_errors(squared)
    assert expected.dtype == np.float64
    assert decide(squared, 1.0, 3).errors.tolist() == expected.tolist()
    alone = [decide(squared[i : i + 1], 1.0, 3).errors[0] for i in range(40)]
    assert alone == expected.tolist()


@pytest.mark.parametrize("rows", [1, 5, 31, 32, 500])
@pytest.mark.parametrize("n_sensors", [1, 3, 50, 64, 65])
def test_top_contributors_order_with_ties(rows: int, n_sensors: int) -> None:
    """Largest first, equal values in sensor order, on both the small-batch and the
    packed-key path (and past a power of two of sensors)."""
    rng = np.random.default_rng(rows * 100 + n_sensors)
    squared = rng.exponential(size=(rows, n_sensors)).astype(np.float32)
    squared[:, ::3] = squared[:, :1]  # ties, including ties with the largest
    squared[0] = 0.0
    for k in {1, 3, n_sensors}:
        k = min(k, n_sensors)
        want = np.argsort(-squared.astype(np.float64), axis=1, kind="stable")[:, :k]
        assert np.array_equal(top_contributors(squared, k), want)


def test_top_contributors_other_dtypes_and_negative_values() -> None:
    """Inputs the packed keys cannot order (float64, negative values) take the partition
    path: the same top values, largest first."""
    rng = np.random.default_rng(5)
    for squared in (
        rng.exponential(size=(200, 20)),
        rng.normal(size=(200, 20)).astype(np.float32),
        np.full((40, 6), -0.0, dtype=np.float32),
    ):
        want = np.sort(squared, axis=1)[:, ::-1][:, :4]
        got = np.take_along_axis(squared, top_contributors(squared, 4), axis=1)
        assert np.array_equal(got, want)


def test_decide_one_reading_equals_its_row_in_a_batch() -> None:
    rng = np.random.default_rng(6)
    squared = (rng.normal(size=(40, 50)) * 10 ** rng.uniform(-4, 4, size=(40, 50))) ** 2
    squared = squared.astype(np.float32)
    squared[3] = 0.0
    batch = decide(squared, threshold=0.7, top_k=3)
    for row in range(len(squared)):
        one = decide(squared[row : row + 1], threshold=0.7, top_k=3)
        for field in ("errors", "scores", "anomalies", "top_index", "top_share"):
            got, want = getattr(one, field)[0], getattr(batch, field)[row]
            assert np.array_equal(got, want) and got.dtype == want.dtype, field


def test_decide_top_k_capped_and_zero_error() -> None:
    out = decide(np.zeros((2, 3), dtype=np.float32), threshold=1.0, top_k=10)
    assert out.top_index.shape == (2, 3)
    assert (out.top_share == 0).all() and not out.anomalies.any()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def new_state(clock: Clock, window: int = 1) -> StreamState:
    return StreamState(
        RollingMean(3),
        AlertDebouncer(1, 1, 0),
        window=window,
        n_sensors=2,
        model_version="1",
        now=clock(),
    )


def test_lru_eviction_counts() -> None:
    clock = Clock()
    evicted: list[tuple[str, int]] = []
    streams = StreamStates(2, 60, on_evict=lambda r, n: evicted.append((r, n)), clock=clock)
    for name in ("a", "b"):
        streams.commit(("m", name), new_state(clock))
    a = streams.peek(("m", "a"))
    assert a is not None
    streams.commit(("m", "a"), a)  # a is now the most recent
    streams.commit(("m", "c"), new_state(clock))
    assert ("m", "b") not in streams and ("m", "a") in streams and len(streams) == 2
    assert evicted == [("lru", 1)]


def test_ttl_expiry_counts() -> None:
    clock = Clock()
    evicted: list[tuple[str, int]] = []
    streams = StreamStates(10, 60, on_evict=lambda r, n: evicted.append((r, n)), clock=clock)
    streams.commit(("m", "a"), new_state(clock))
    streams.commit(("m", "b"), new_state(clock))
    clock.now += 30
    streams.commit(("m", "c"), new_state(clock))
    clock.now += 31
    assert streams.peek(("m", "a")) is None  # idle: hidden even before it is dropped
    assert streams.peek(("m", "c")) is not None
    assert streams.expire() == 2
    assert evicted == [("ttl", 2)] and len(streams) == 1


def test_window_buffer_warms_up_then_slides() -> None:
    clock = Clock()
    state = new_state(clock, window=3)
    first = np.array([[1, 1], [2, 2]], dtype=np.float32)
    inputs = state.windows(first)
    windows, warming = inputs.windows, inputs.warming
    assert warming == 2 and windows.shape == (0, 3, 2)
    state.push(first)
    nxt = np.array([[3, 3], [4, 4]], dtype=np.float32)
    inputs = state.windows(nxt)
    windows, warming = inputs.windows, inputs.warming
    assert warming == 0
    np.testing.assert_array_equal(windows[:, :, 0], [[1, 2, 3], [2, 3, 4]])
    state.push(nxt)
    np.testing.assert_array_equal(state.window_buffer[:, 0], [3, 4])
    one = new_state(clock, window=3)
    inputs = one.windows(np.arange(10, dtype=np.float32).reshape(5, 2))
    windows, warming = inputs.windows, inputs.warming
    assert warming == 2 and windows.shape == (3, 3, 2)


def test_rolling_quantiles_cover_the_last_values() -> None:
    rolling = RollingQuantiles(100, (0.5, 0.99))
    assert rolling.compute() == {}
    rng = np.random.default_rng(5)
    values = rng.normal(size=537)
    for start in range(0, 537, 37):
        rolling.add(values[start : start + 37])
    got = rolling.compute()
    assert got[0.5] == pytest.approx(float(np.quantile(values[-100:], 0.5)))
    assert got[0.99] == pytest.approx(float(np.quantile(values[-100:], 0.99)))
    rolling.add(np.arange(1000.0))
    assert rolling.compute()[0.5] == pytest.approx(949.5)


# The glitch guard's windows (service/scoring/glitches.py decides what is a glitch).
GLITCH_LIMITS = np.array([1.0, 1.0], dtype=np.float32)


def column(*values: float) -> np.ndarray:
    return np.array([[v, 0.0] for v in values], dtype=np.float32)


def test_each_windows_latest_reading_stays_raw() -> None:
    data = column(0.0, 0.0, 5.0, 0.0, 0.0)
    windows = guarded_windows_of(data[:0], data, 3, GLITCH_LIMITS).windows
    assert windows[:, :, 0].tolist() == [[0, 0, 5], [0, 0, 0], [0, 0, 0]]


def test_a_stream_keeps_one_reading_more_with_the_guard() -> None:
    assert history_rows(4, guarded=True) == 4
    assert history_rows(4, guarded=False) == 3
    assert history_rows(1, guarded=True) == 0  # one reading per input: nothing to despike


def guarded_state(window: int, n_sensors: int, limits: np.ndarray | None) -> StreamState:
    return StreamState(
        RollingMean(1), AlertDebouncer(1, 1, 0), window=window, n_sensors=n_sensors,
        model_version="1", now=0.0, limits=limits,
    )  # fmt: skip


@pytest.mark.parametrize("window", [2, 3, 6])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_stream_gets_the_offline_windows_in_any_batches(window: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(60, 3)).astype(np.float32)
    values[rng.choice(60, size=8, replace=False), rng.integers(0, 3, size=8)] += 6.0
    limits = np.full(3, 2.0, dtype=np.float32)
    expected = guarded_windows_of(values[:0], values, window, limits).windows
    assert not np.array_equal(
        expected, guarded_windows_of(values[:0], values, window, limits * 100).windows
    )

    state = guarded_state(window, 3, limits)
    got, start = [], 0
    while start < len(values):
        size = int(rng.integers(1, 9))
        batch = values[start : start + size]
        inputs = state.windows(batch)
        windows, warming = inputs.windows, inputs.warming
        assert warming == max(0, min(len(batch), window - 1 - start))
        got.append(windows)
        state.push(batch)
        start += size
    np.testing.assert_array_equal(np.concatenate(got), expected)
    assert state.context == window - 1 and state.filled == window


@pytest.mark.parametrize("guarded", [True, False])
@pytest.mark.parametrize("window", [2, 5])
def test_a_warm_stream_scored_one_reading_at_a_time_gets_the_offline_windows(
    guarded: bool, window: int
) -> None:
    """A warm stream's next reading has its own short path (its one window, formed without
    sliding over the batch): it must give what the offline windows over the whole run give,
    glitches put back before the latest reading and kept at it."""
    rng = np.random.default_rng(window)
    values = rng.normal(size=(40, 3)).astype(np.float32)
    values[[10, 11, 25, 33], [0, 2, 1, 0]] += 6.0  # lone spikes, and two side by side
    limits = np.full(3, 2.0, dtype=np.float32) if guarded else None
    expected = input_windows(values[:0], values, window, limits).windows
    state = guarded_state(window, 3, limits)
    got = []
    for row in values:
        windows = state.windows(row[np.newaxis]).windows
        assert windows.flags.c_contiguous and windows.flags.writeable
        got.append(windows)
        state.push(row[np.newaxis])
    np.testing.assert_array_equal(np.concatenate(got), expected)


def test_without_limits_a_stream_keeps_its_plain_windows() -> None:
    values = column(0.0, 0.0, 5.0, 0.0, 0.0)
    state = guarded_state(3, 2, None)
    windows = state.windows(values).windows
    assert windows[:, 1, 0].tolist() == [0, 5, 0]
    assert len(state.window_buffer) == 2
