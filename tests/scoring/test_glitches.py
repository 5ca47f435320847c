"""The glitch guard's despiking (service/scoring/glitches.py)."""

from __future__ import annotations

import numpy as np
import pytest

from service.scoring.glitches import despike, despiked
from service.scoring.streams import guarded_windows_of

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


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("window", [2, 5])
def test_a_stream_counts_each_reading_despiked_puts_back_once(seed: int, window: int) -> None:
    """A stream's requests, in any batches, count the readings a whole-run despiking puts a
    value of back, each once (the request that brings its successor counts it)."""
    rng = np.random.default_rng(seed)
    run = rng.normal(scale=0.2, size=(80, 2)).astype(np.float32)
    spikes = rng.choice(np.arange(1, 79), size=10, replace=False)
    run[spikes, rng.integers(0, 2, size=10)] += 5.0
    _, replaced = despike(run, LIMITS)
    expected = int((despiked(run, LIMITS) != run).any(axis=1).sum())
    assert expected >= 5 and int(replaced.sum()) == expected
    counted, start = 0, 0
    while start < len(run):
        size = int(rng.integers(1, 6))
        history = run[max(0, start - window) : start]  # what a stream keeps with the guard
        counted += guarded_windows_of(history, run[start : start + size], window, LIMITS).glitched
        start += size
    assert counted == expected
    assert guarded_windows_of(run[:0], run, window, LIMITS).glitched == expected
    assert guarded_windows_of(run[:0], run[:2], window, LIMITS).glitched == 0  # no neighbours
