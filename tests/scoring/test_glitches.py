"""The glitch guard's despiking, and a stream's windows with it whatever its batches."""

from __future__ import annotations

import numpy as np
import pytest

from service.scoring.decision import AlertDebouncer
from service.scoring.glitches import despiked, guarded_windows, history_rows
from service.scoring.smoothing import RollingMean
from service.scoring.streams import StreamState

LIMITS = np.array([1.0, 1.0], dtype=np.float32)


def column(*values: float) -> np.ndarray:
    return np.array([[v, 0.0] for v in values], dtype=np.float32)


def test_a_lone_jump_beyond_the_limit_is_put_back_to_its_neighbours_mean() -> None:
    out = despiked(column(0.0, 0.4, 5.0, 0.6, 0.5), LIMITS)
    assert out[:, 0].tolist() == pytest.approx([0.0, 0.4, 0.5, 0.6, 0.5])


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ((0.0, 5.0, 5.0, 5.0), "a step never jumps back"),
        ((0.0, 5.0, 5.0, 0.0), "two readings: each is level with one neighbour"),
        ((0.0, 1.0, 2.0, 3.0), "a ramp moves one way"),
        ((0.0, 0.9, 0.0, 0.9), "jumps within the limit"),
        ((0.0, 3.0, 2.5, 2.5), "down from the jump by less than the limit"),
    ],
)
def test_what_is_not_a_lone_glitch_is_kept(values: tuple[float, ...], why: str) -> None:
    data = column(*values)
    np.testing.assert_array_equal(despiked(data, LIMITS), data, err_msg=why)


def test_both_directions_and_each_sensor_on_its_own_limit() -> None:
    data = np.array([[0.0, 0.0], [-4.0, 1.5], [0.0, 0.0]], dtype=np.float32)
    out = despiked(data, np.array([1.0, 2.0], dtype=np.float32))
    assert out[1].tolist() == [0.0, 1.5]  # the second sensor's jump is within its limit


def test_a_reading_is_judged_on_raw_neighbours_only() -> None:
    """Replacing a glitch must not change how its neighbours are judged: the result is the
    same whichever reading is looked at first."""
    data = column(0.0, 6.0, -6.0, 6.0, 0.0)
    out = despiked(data, LIMITS)
    # Each interior reading jumps from both raw neighbours: all three are put back.
    assert out[:, 0].tolist() == pytest.approx([0.0, -3.0, 6.0, -3.0, 0.0])


def test_the_first_and_last_readings_are_kept() -> None:
    data = column(9.0, 0.0, 0.0, 9.0)
    assert despiked(data, LIMITS)[:, 0].tolist() == [9.0, 0.0, 0.0, 9.0]
    short = column(9.0, 0.0)
    np.testing.assert_array_equal(despiked(short, LIMITS), short)


def test_each_windows_latest_reading_stays_raw() -> None:
    data = column(0.0, 0.0, 5.0, 0.0, 0.0)
    windows = guarded_windows(data, 3, LIMITS)
    assert windows[:, :, 0].tolist() == [[0, 0, 5], [0, 0, 0], [0, 0, 0]]


def test_a_stream_keeps_one_reading_more_with_the_guard() -> None:
    assert history_rows(4, guarded=True) == 4
    assert history_rows(4, guarded=False) == 3
    assert history_rows(1, guarded=True) == 0  # one reading per input: nothing to despike


def _state(window: int, n_sensors: int, limits: np.ndarray | None) -> StreamState:
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
    expected = guarded_windows(values, window, limits)
    assert not np.array_equal(expected, guarded_windows(values, window, limits * 100))

    state = _state(window, 3, limits)
    got, start = [], 0
    while start < len(values):
        size = int(rng.integers(1, 9))
        batch = values[start : start + size]
        windows, warming = state.windows(batch)
        assert warming == max(0, min(len(batch), window - 1 - start))
        got.append(windows)
        state.push(batch)
        start += size
    np.testing.assert_array_equal(np.concatenate(got), expected)
    assert state.context == window - 1 and state.filled == window


def test_without_limits_a_stream_keeps_its_plain_windows() -> None:
    values = column(0.0, 0.0, 5.0, 0.0, 0.0)
    state = _state(3, 2, None)
    windows, _ = state.windows(values)
    assert windows[:, 1, 0].tolist() == [0, 5, 0]
    assert len(state.window_buffer) == 2
