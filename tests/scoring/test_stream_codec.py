"""A stream state carried through bytes between every request scores exactly as one that
stayed in memory: the guarantee shared state (Redis) rests on."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import service.scoring.stream_codec as stream_codec
from service.scoring.decision import AlertDebouncer
from service.scoring.manifest import ScoreSmoothing
from service.scoring.smoothing import make_smoother
from service.scoring.stream_codec import StateFormatError, encode, restore
from service.scoring.streams import StreamState

SMOOTHINGS = [
    ScoreSmoothing(method="none", window=1, alpha=0.5),
    ScoreSmoothing(method="mean", window=4, alpha=0.5),
    ScoreSmoothing(method="median", window=3, alpha=0.5),
    ScoreSmoothing(method="median", window=6, alpha=0.5),
    ScoreSmoothing(method="ewma", window=1, alpha=0.3),
    # with the glitch guard (see fresh): its limits, and one more reading kept
    ScoreSmoothing(method="ewma", window=2, alpha=0.3),
]


def fresh(smoothing: ScoreSmoothing, window: int, n_sensors: int = 3) -> StreamState:
    guarded = smoothing.method == "ewma" and smoothing.window == 2
    return StreamState(
        make_smoother(smoothing),
        AlertDebouncer(k=2, n=4, cooldown=3),
        window=window,
        n_sensors=n_sensors,
        model_version="7",
        now=1000.0,
        limits=np.full(n_sensors, 1.5, dtype=np.float32) if guarded else None,
    )


def step(state: StreamState, values: np.ndarray, scores: np.ndarray) -> tuple[object, ...]:
    inputs = state.windows(values)
    windows, warming = inputs.windows, inputs.warming
    smoothed = state.smoother.update_many(scores[warming:])
    states, raised = state.debouncer.update_many(smoothed)
    state.push(values)
    return windows.tobytes(), warming, smoothed.tobytes(), states.tobytes(), raised


@pytest.mark.parametrize("smoothing", SMOOTHINGS, ids=lambda s: f"{s.method}{s.window}")
@pytest.mark.parametrize("window", [1, 2, 5])
def test_a_state_restored_before_every_request_scores_bit_for_bit_the_same(
    smoothing: ScoreSmoothing, window: int
) -> None:
    rng = np.random.default_rng(window * 31 + smoothing.window)
    kept = fresh(smoothing, window)
    carried_bytes = encode(fresh(smoothing, window))
    for _ in range(60):
        size = int(rng.choice([1, 1, 2, 3, 17, 40]))  # loops and the vectorised paths
        values = rng.normal(size=(size, 3)).astype(np.float32)
        scores = rng.gamma(2.0, 0.6, size=size)
        carried = fresh(smoothing, window)
        restore(carried, carried_bytes)
        assert step(carried, values, scores) == step(kept, values, scores)
        carried_bytes = encode(carried)
    assert carried_bytes == encode(kept)


def test_the_version_last_seen_and_window_rows_travel() -> None:
    state = fresh(SMOOTHINGS[1], window=3)
    state.push(np.array([[1.0, 2.0, 3.0]], dtype=np.float32))
    state.last_seen = 1234.5
    copy = fresh(SMOOTHINGS[1], window=3)
    copy.model_version = "other"
    restore(copy, encode(state))
    assert (copy.model_version, copy.last_seen, copy.filled) == ("7", 1234.5, 1)
    assert copy.window_buffer.tolist() == [[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]]


def test_the_threshold_the_scores_are_over_travels() -> None:
    """The unit (StreamState.in_units): restored elsewhere after a threshold change, the
    remembered scores are put over the new one as they would be here."""
    state = fresh(SMOOTHINGS[4], window=1)
    state.smoother.update(1.5)
    state.unit = 2.0
    copy = fresh(SMOOTHINGS[4], window=1)
    restore(copy, encode(state))
    assert copy.unit == 2.0 and copy.smoother.get() == 1.5
    copy.in_units(4.0)
    assert copy.smoother.get() == 0.75 and copy.unit == 4.0


@pytest.mark.parametrize("method", ["ewma", "mean", "median"])
def test_a_declared_start_restored_across_a_threshold_change_is_over_the_new_one(
    method: str,
) -> None:
    """A stream with no score yet remembers only where it starts: written at threshold 2,
    read where the threshold is now 4 (a fresh state over 4), it starts at start / 4."""
    smoothing = ScoreSmoothing(method=method, window=3, alpha=0.3, start=1.0)

    def made(unit: float) -> StreamState:
        return StreamState(
            make_smoother(smoothing, unit), AlertDebouncer(k=2, n=4, cooldown=3), window=3,
            n_sensors=3, model_version="7", now=1000.0, unit=unit,
        )  # fmt: skip

    copy = made(4.0)
    restore(copy, encode(made(2.0)))
    copy.in_units(4.0)
    assert copy.smoother.get() == pytest.approx(0.25)
    assert copy.smoother.update(0.25) == pytest.approx(0.25)


def test_a_state_written_before_the_unit_keeps_the_threshold_in_force() -> None:
    """As a service before this one wrote it (no unit after the rows): read as that service
    read it, its scores over the threshold the fresh state was made with; and a service
    before this one reads this one's blobs, the unit being past the rows it reads."""
    state = fresh(SMOOTHINGS[4], window=3)
    state.smoother.update(1.5)
    state.artifact = "0123456789abcdef"
    state.push(np.ones((2, 3), dtype=np.float32))
    blob = encode(state)
    assert len(blob) == len(encode_without_unit(state)) + stream_codec._UNIT.size + 17
    copy = fresh(SMOOTHINGS[4], window=3)
    copy.unit = 3.0
    restore(copy, encode_without_unit(state))
    assert copy.unit == 3.0 and copy.smoother.get() == 1.5 and copy.filled == 2


def encode_without_unit(state: StreamState) -> bytes:
    """As a service from before wrote it: nothing after the rows."""
    return encode(state)[: -(stream_codec._UNIT.size + 1 + len(state.artifact))]


def test_the_artifact_travels_and_a_state_of_another_artifact_does_not_belong() -> None:
    state = fresh(SMOOTHINGS[4], window=3)
    state.artifact = "0123456789abcdef"
    state.push(np.ones((2, 3), dtype=np.float32))
    copy = fresh(SMOOTHINGS[4], window=3)
    restore(copy, encode(state))
    assert copy.artifact == "0123456789abcdef" and copy.filled == 2
    assert copy.belongs_to("7", "0123456789abcdef")
    assert not copy.belongs_to("7", "fedcba9876543210")  # rewritten under the same version
    assert not copy.belongs_to("8", "0123456789abcdef")
    older = fresh(SMOOTHINGS[4], window=3)
    older.artifact = "fedcba9876543210"  # what the fresh state is made with: the model's
    restore(older, encode_without_unit(state))
    assert older.artifact == "fedcba9876543210"  # a blob that does not say keeps it


def test_a_state_that_does_not_fit_the_model_is_refused() -> None:
    state = fresh(SMOOTHINGS[0], window=4)
    state.push(np.ones((3, 3), dtype=np.float32))
    with pytest.raises(StateFormatError):
        restore(fresh(SMOOTHINGS[0], window=2), encode(state))  # more rows than the window
    with pytest.raises(StateFormatError):
        restore(fresh(SMOOTHINGS[0], window=4, n_sensors=5), encode(state))
    with pytest.raises(StateFormatError):
        restore(fresh(SMOOTHINGS[0], window=4), b"\x09" + encode(state)[1:])  # unknown format
    with pytest.raises(StateFormatError):
        restore(fresh(SMOOTHINGS[0], window=4), b"\x01")


def test_doctests() -> None:
    assert doctest.testmod(stream_codec).failed == 0
