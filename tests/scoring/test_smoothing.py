"""Smoothers and the alert debouncer: batch updates equal one-at-a-time updates."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

import service.scoring.decision as decision_module
import service.scoring.smoothing as smoothing_module
from service.scoring.decision import ALERT, COOLDOWN, NORMAL, STATE_NAMES, AlertDebouncer
from service.scoring.manifest import ScoreSmoothing
from service.scoring.smoothing import Ewma, RollingMean, RollingMedian, make_smoother


def test_doctests() -> None:
    for module in (smoothing_module, decision_module):
        assert doctest.testmod(module).failed == 0


@pytest.mark.parametrize(
    "smoothing",
    [
        ScoreSmoothing(method="mean", window=5, start=0.8),
        ScoreSmoothing(method="median", window=3, start=0.8),
        ScoreSmoothing(method="median", window=3),
        ScoreSmoothing(method="ewma", alpha=0.3, start=0.8),
        ScoreSmoothing(method="ewma", alpha=0.3),
    ],
    ids=["mean5-", "median3-", "median3", "ewma-", "ewma"],
)
@pytest.mark.parametrize("seen", [0, 2, 30])
def test_rescaled_it_smooths_as_if_every_score_had_been_over_the_new_unit(
    smoothing: ScoreSmoothing, seen: int
) -> None:
    """A threshold changed from 2 to 5: a smoother fed errors over 2, then rescaled by 2/5,
    goes on as one fed the same errors over 5 from the start (its start too)."""
    errors = np.random.default_rng(seen).gamma(2.0, 0.6, size=seen + 20)
    rescaled, always = make_smoother(smoothing, 2.0), make_smoother(smoothing, 5.0)
    for score in errors[:seen]:
        rescaled.update(score / 2)
        always.update(score / 5)
    rescaled.rescale(2 / 5)
    np.testing.assert_allclose(rescaled.get(), always.get(), rtol=1e-12)
    np.testing.assert_allclose(
        rescaled.update_many(errors[seen:] / 5), always.update_many(errors[seen:] / 5), rtol=1e-12
    )


@pytest.mark.parametrize(
    "make",
    [
        lambda: RollingMean(5),
        lambda: RollingMedian(5),
        lambda: RollingMedian(4),
        lambda: RollingMedian(3),
        lambda: Ewma(0.3),
        lambda: RollingMean(1),
        lambda: RollingMean(5, 0.4),
        lambda: RollingMedian(3, 0.4),
        lambda: Ewma(0.3, 0.4),
    ],
    ids=["mean5", "median5", "median4", "median3", "ewma", "mean1", "mean5-", "median3-", "ewma-"],
)
@pytest.mark.parametrize("sizes", [[1, 1, 40, 3, 100], [200], [2, 17, 16, 1]])
def test_batch_update_equals_loop(make: object, sizes: list[int]) -> None:
    rng = np.random.default_rng(1)
    batched, looped = make(), make()  # type: ignore[operator]
    for size in sizes:
        xs = rng.exponential(size=size)
        got = batched.update_many(xs)
        want = np.array([looped.update(x) for x in xs])
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        assert batched.get() == pytest.approx(looped.get())


def test_median_of_three_is_exactly_numpys() -> None:
    rng = np.random.default_rng(4)
    xs = np.round(rng.exponential(size=500), 1)  # rounded: many ties
    windows = np.lib.stride_tricks.sliding_window_view(xs, 3)
    got = smoothing_module._median_of_rows(windows)
    assert np.array_equal(got, np.median(windows, axis=1))


def test_reference_values() -> None:
    assert [RollingMedian(3).update(x) for x in (1.0,)] == [1.0]
    median = RollingMedian(3)
    assert [median.update(x) for x in (1.0, 9.0, 2.0, 3.0)] == [1.0, 5.0, 2.0, 3.0]
    ewma = Ewma(0.5)
    assert [ewma.update(x) for x in (2.0, 4.0, 0.0)] == [2.0, 3.0, 1.5]
    assert make_smoother(ScoreSmoothing(method="median", window=3)).update(7.0) == 7.0
    with pytest.raises(ValueError):
        RollingMean(0)
    with pytest.raises(ValueError):
        Ewma(0.0)


def test_a_declared_start_is_where_a_new_stream_begins() -> None:
    assert [Ewma(0.5, 1.0).update(x) for x in (3.0,)] == [2.0]
    ewma = Ewma(0.5, 1.0)
    assert [ewma.update(x) for x in (3.0, 3.0)] == [2.0, 2.5]
    mean = RollingMean(3, 1.0)
    assert [mean.update(x) for x in (4.0, 4.0, 4.0)] == [2.0, 3.0, 4.0]
    median = RollingMedian(3, 1.0)
    assert [median.update(x) for x in (9.0, 2.0, 3.0)] == [1.0, 2.0, 3.0]  # a first spike: none
    # Divided by the unit the stream's scores are divided by (the threshold in force).
    seeded = ScoreSmoothing(method="ewma", alpha=0.5, start=2.0)
    assert make_smoother(seeded, 4.0).update(1.5) == 1.0
    assert Ewma(0.5).get() == RollingMean(3).get() == RollingMedian(3).get() == 0.0
    # "none" has nothing to start.
    assert make_smoother(ScoreSmoothing(method="none", start=2.0)).update(7.0) == 7.0


@pytest.mark.parametrize(
    "make", [lambda: Ewma(0.5, 1.0), lambda: RollingMean(3, 1.0), lambda: RollingMedian(3, 1.0)]
)
def test_a_restored_stream_that_never_scored_starts_at_the_declared_start(make: object) -> None:
    fresh = make()  # type: ignore[operator]
    # Its own snapshot, or an empty history (a stream that never scored, as a state an
    # older service wrote for a stream that had not yet scored).
    for remembered in (fresh.snapshot(), []):
        restored = make()  # type: ignore[operator]
        restored.update(50.0)
        restored.restore(remembered)
        assert restored.get() == fresh.get() == 1.0  # before any score: the start
        assert restored.snapshot() == fresh.snapshot()
    assert restored.update(3.0) == fresh.update(3.0)


@pytest.mark.parametrize("spec", ["ewma:0.3", "mean:3", "median:3"])
def test_new_streams_flag_no_more_often_than_the_threshold_promises(spec: str) -> None:
    """Started at the calibration scores' level, a new stream's first smoothed scores cross
    a threshold set on smoothed calibration scores at about the promised rate; started from
    its first score, the first crosses it several times as often."""
    from models.operating_point import declared, parse_smoothing, smooth

    rng = np.random.default_rng(7)
    calibration = rng.exponential(size=50_000)
    how = declared(spec, calibration)
    threshold = np.quantile(smooth(calibration, how), 0.99)
    streams = rng.exponential(size=(4000, 3))
    seeded = np.array([smooth(s, how) for s in streams]) > threshold
    unseeded = np.array([smooth(s, parse_smoothing(spec)) for s in streams]) > threshold
    assert seeded.mean(axis=0).max() <= 0.015
    assert unseeded[:, 0].mean() >= 0.03


def states(debouncer: AlertDebouncer, scores: list[float]) -> list[str]:
    out, _ = debouncer.update_many(np.array(scores))
    return [STATE_NAMES[s] for s in out.tolist()]


def test_k_of_n_needs_k_highs_in_window() -> None:
    d = AlertDebouncer(k=3, n=5, cooldown=0)
    assert states(d, [2, 0, 2, 0, 0, 0, 2]) == ["normal"] * 7  # never 3 highs within 5
    d = AlertDebouncer(k=3, n=5, cooldown=0)
    assert states(d, [2, 0, 2, 0, 2]) == ["normal"] * 4 + ["alert"]


def test_single_blip_never_alerts() -> None:
    d = AlertDebouncer(k=2, n=4, cooldown=3)
    result, raised = d.update_many(np.array([0.1] * 10 + [50.0] + [0.1] * 10))
    assert raised == 0 and (result == NORMAL).all()


def test_cooldown_suppresses_realerting() -> None:
    d = AlertDebouncer(k=2, n=2, cooldown=3)
    seq = [2, 2, 0, 2, 2, 2, 2]
    #      n  A  C  C  C  A  A   (clears at index 2, cool-down covers 2..4)
    assert states(d, seq) == [
        "normal",
        "alert",
        "cooldown",
        "cooldown",
        "cooldown",
        "alert",
        "alert",
    ]
    _, raised = AlertDebouncer(k=2, n=2, cooldown=3).update_many(np.array(seq, dtype=float))
    assert raised == 2


def test_exactly_threshold_is_not_high() -> None:
    d = AlertDebouncer(k=1, n=1, cooldown=0)
    assert states(d, [1.0, 1.0000001]) == ["normal", "alert"]


@pytest.mark.parametrize("split", [3, 16, 50, 300])
@pytest.mark.parametrize(
    ("k", "n", "cooldown", "rate"), [(3, 5, 4, 0.3), (1, 1, 0, 0.5), (2, 4, 1, 0.2)]
)
def test_debouncer_batches_equal_one_by_one(
    split: int, k: int, n: int, cooldown: int, rate: float
) -> None:
    rng = np.random.default_rng(7)
    scores = np.where(rng.random(600) < rate, 2.0, 0.2)
    one_by_one = AlertDebouncer(k=k, n=n, cooldown=cooldown)
    want_parts = [one_by_one.update_many(scores[i : i + 1]) for i in range(len(scores))]
    want = np.concatenate([w for w, _ in want_parts])
    want_raised = sum(r for _, r in want_parts)
    parts = AlertDebouncer(k=k, n=n, cooldown=cooldown)
    got, raised = [], 0
    for start in range(0, len(scores), split):
        out, r = parts.update_many(scores[start : start + split])
        got.extend(out.tolist())
        raised += r
    assert got == want.tolist() and raised == want_raised
    assert ALERT in got and (COOLDOWN in got or cooldown == 0)


def test_debouncer_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        AlertDebouncer(k=4, n=3, cooldown=0)
    with pytest.raises(ValueError):
        AlertDebouncer(k=1, n=3, cooldown=-1)
