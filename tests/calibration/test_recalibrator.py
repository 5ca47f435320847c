"""The candidate rule and the background loop's scheduling."""

from __future__ import annotations

import asyncio
import doctest
import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import pytest

from service.calibration import recalibrator
from service.calibration.evidence import Exceedance, needed_without_exceedance, sample_exceedance
from service.calibration.recalibrator import (
    Candidate,
    RecalibrationLoop,
    RecalibrationPolicy,
    candidate_threshold,
)


def test_doctests() -> None:
    assert doctest.testmod(recalibrator).failed == 0


def labelled(
    errors: Sequence[float] | np.ndarray,
    current: float,
    policy: RecalibrationPolicy,
    *,
    spans: Sequence[str] | None = None,
    memory: float = 1.0,
) -> Candidate:
    """Errors labelled as normal operation ran (time ranges, carried readings): they measure
    how often it exceeds the threshold themselves."""
    seen = sample_exceedance(errors, current, spans=spans, memory=memory)
    return candidate_threshold(errors, current, policy, exceedance=seen)


def test_quantile_candidate_within_cap_is_applied() -> None:
    rng = np.random.default_rng(0)
    errors = rng.gamma(2.0, 0.5, size=2000)
    q = float(np.quantile(errors, 0.99))
    result = labelled(errors, q * 0.9, RecalibrationPolicy(quantile=0.99))
    assert result.outcome == "applied"
    assert result.value == pytest.approx(q)
    assert result.relative_change == pytest.approx(1 / 0.9 - 1)
    assert result.statistics["n_samples"] == 2000


def test_move_beyond_cap_in_either_direction_is_pending() -> None:
    policy = RecalibrationPolicy(quantile=0.5, min_samples=5, max_relative_change=0.2)
    up = labelled([1.3] * 10, 1.0, policy)
    down = labelled([0.7] * 10, 1.0, policy)
    assert (up.outcome, down.outcome) == ("pending", "pending")
    assert up.value == pytest.approx(1.3) and down.value == pytest.approx(0.7)
    edge = labelled([1.2] * 10, 1.0, policy)
    assert edge.outcome == "applied"


def test_tiny_change_is_unchanged_and_too_few_is_insufficient() -> None:
    policy = RecalibrationPolicy(quantile=0.5, min_samples=5, min_relative_change=0.01)
    tiny = labelled([1.005] * 50, 1.0, policy)  # all above: the threshold is wrong
    assert tiny.outcome == "unchanged" and "within 1% of current" in tiny.message
    few = labelled([1.1] * 4, 1.0, policy)
    assert few.outcome == "insufficient" and few.value is None and few.n_samples == 4
    # Non-finite errors never count toward the sample.
    assert labelled([1.1] * 4 + [float("nan")], 1.0, policy).outcome == "insufficient"


def test_robust_variant_resists_a_minority_of_outliers() -> None:
    rng = np.random.default_rng(1)
    clean = rng.normal(1.0, 0.1, size=500)
    polluted = np.concatenate([clean, np.full(40, 50.0)])  # 7% mislabelled anomalies
    robust = RecalibrationPolicy(method="robust", mad_k=3.0, max_relative_change=10.0)
    quantile = RecalibrationPolicy(method="quantile", quantile=0.99, max_relative_change=100.0)
    r = candidate_threshold(polluted, 1.3, robust, exceedance=None)
    q = labelled(polluted, 1.3, quantile)
    assert r.value is not None and q.value is not None
    assert r.value == pytest.approx(1.0 + 3 * 0.1, rel=0.08)
    assert q.value > 40  # the plain quantile is dragged to the outliers
    assert r.statistics["method"] == "robust"


def moves(outcomes: list[str]) -> int:
    return sum(outcome in ("applied", "pending") for outcome in outcomes)


def test_a_correct_threshold_stays_where_the_old_rule_moved_it_at_every_run() -> None:
    """Labels from the threshold's own law: their 0.99 quantile scatters around it, and
    applied as it came it moved the threshold at nearly every run."""
    rng = np.random.default_rng(5)
    threshold = float(np.log(100.0))  # the 0.99 quantile of a unit exponential
    policy = RecalibrationPolicy()
    for n in (50, 200, 1000, 5000):
        outcomes = [
            labelled(rng.exponential(size=n), threshold, policy).outcome for _ in range(200)
        ]
        assert moves(outcomes) <= 6, (n, outcomes)  # 1% expected: at most 3%
        # The candidate alone, which the rule before applied or held whenever it strayed
        # beyond the minimum change, nearly always does.
        changes = [
            labelled(rng.exponential(size=n), threshold, policy).relative_change for _ in range(50)
        ]
        beyond = [c for c in changes if c is not None and abs(c) >= policy.min_relative_change]
        assert len(beyond) >= (40 if n <= 1000 else 25), (n, changes)  # 90%+, 73% measured


def test_a_real_shift_moves_it_once_the_labels_show_it() -> None:
    rng = np.random.default_rng(6)
    threshold = float(np.log(100.0))
    policy = RecalibrationPolicy(max_relative_change=1.0)
    # Errors 1.3 times as large: 2.9% of them above the threshold, their 0.99 quantile 30% up.
    outcomes = [labelled(1.3 * rng.exponential(size=2000), threshold, policy) for _ in range(100)]
    assert moves([c.outcome for c in outcomes]) >= 95
    moved = [c.relative_change for c in outcomes if c.relative_change is not None]
    assert np.median(moved) == pytest.approx(0.3, abs=0.05)
    # Errors 0.7 times as large: 0.14% above it; two thousand readings rule out 1%.
    lower = [labelled(0.7 * rng.exponential(size=2000), threshold, policy) for _ in range(100)]
    assert moves([c.outcome for c in lower]) >= 95
    assert all(c.relative_change is not None and c.relative_change < 0 for c in lower)


def test_a_stretch_labelled_in_one_request_counts_by_the_memory() -> None:
    """The same errors, 3% above the threshold: 1,000 readings labelled one by one show it;
    labelled as one stretch of a process that remembers 50 readings, they are worth about
    21 independent ones, which cannot tell 3% from 1%."""
    errors = np.where(np.arange(1000) % 100 < 3, 2.0, 0.5)
    policy = RecalibrationPolicy(max_relative_change=0.5)
    alone = labelled(errors, 1.0, policy)
    assert alone.outcome == "pending" and alone.statistics["n_effective"] == pytest.approx(1000)
    stretch = labelled(errors, 1.0, policy, spans=["a"] * 1000, memory=50.0)
    assert stretch.outcome == "unchanged", stretch.message
    assert stretch.statistics["n_effective"] == pytest.approx(1 + 999 / 50)
    assert "worth about 21 independent readings" in stretch.message
    assert stretch.value == alone.value  # the candidate is recorded all the same
    # Ten stretches of 100 count 1 + 99 / 50 each: about 30.
    tens = labelled(errors, 1.0, policy, spans=[str(i // 100) for i in range(1000)], memory=50.0)
    assert tens.statistics["n_effective"] == pytest.approx(10 * (1 + 99 / 50))


def test_a_threshold_too_high_is_lowered_once_none_above_it_shows_it() -> None:
    """Lowering takes more: with none above the threshold, the interval on a rate of 0 holds
    1% until the readings are worth 528 independent ones (at 0.99 confidence)."""
    policy = RecalibrationPolicy(max_relative_change=1.0)
    assert needed_without_exceedance(policy.quantile, policy.confidence) == 528
    held = labelled(np.linspace(0.1, 0.5, 527), 1.0, policy)
    assert held.outcome == "unchanged", held.message
    assert "readings worth 528 independent ones would show it too high" in held.message
    lowered = labelled(np.linspace(0.1, 0.5, 528), 1.0, policy)
    assert lowered.outcome == "applied" and lowered.relative_change == pytest.approx(-0.5, abs=0.01)
    # At the 0.999 quantile it takes ten times as many.
    assert needed_without_exceedance(0.999, policy.confidence) == 5_296


def test_without_a_measure_of_the_rate_the_threshold_stays() -> None:
    """Labels picked from the review queue alone over-represent alerts: nothing measured how
    often normal operation exceeds the threshold, so the candidate is not applied."""
    policy = RecalibrationPolicy()
    errors = np.r_[np.full(40, 2.0), np.full(200, 0.5)]
    result = candidate_threshold(errors, 1.0, policy, exceedance=None)
    assert result.outcome == "unchanged" and "picked from the review queue" in result.message
    assert result.value is not None and result.value > 1.0  # recorded all the same
    measured = Exceedance(n_above=30, n=1000, effective=1000.0, source="retained scored readings")
    moved = candidate_threshold(errors, 1.0, policy, exceedance=measured)
    assert moved.outcome == "pending" and moved.statistics["exceedance_from"] == measured.source


def test_the_threshold_moves_only_the_way_the_measure_shows() -> None:
    """Labels picked from the review queue weigh the candidate, the representative ones
    measure the rate: when the two disagree on the direction, the threshold stays."""
    policy = RecalibrationPolicy(max_relative_change=1.0)
    low_labels = np.linspace(0.1, 0.5, 600)  # their quantile would lower the threshold
    too_low = Exceedance(n_above=50, n=1000, effective=1000.0, source="representative labels")
    held = candidate_threshold(low_labels, 1.0, policy, exceedance=too_low)
    assert held.outcome == "unchanged" and held.value is not None and held.value < 1.0
    assert "the threshold is too low, but the confirmed normals' candidate would lower it" in (
        held.message
    )
    high_labels = np.linspace(1.5, 2.0, 600)
    too_high = Exceedance(n_above=0, n=1000, effective=1000.0, source="representative labels")
    held = candidate_threshold(high_labels, 1.0, policy, exceedance=too_high)
    assert held.outcome == "unchanged" and "too high, but" in held.message
    # A candidate equal to the threshold moves it neither way.
    level = candidate_threshold(np.ones(600), 1.0, policy, exceedance=too_low)
    assert level.outcome == "unchanged" and "within 1% of current" in level.message
    # Agreeing, either way moves it.
    assert candidate_threshold(high_labels, 1.0, policy, exceedance=too_low).outcome == "applied"
    assert candidate_threshold(low_labels, 1.0, policy, exceedance=too_high).outcome == "applied"


def test_readings_the_learning_freeze_kept_out_hold_a_lowering_not_a_raise() -> None:
    """Frozen readings (labelled normal, scored during an alert) may be normal operation or
    a fault that lasts: a lowering must hold with them counted, a raise without them."""
    policy = RecalibrationPolicy(max_relative_change=1.0)
    learned = Exceedance(n_above=0, n=1000, effective=1000.0, source="representative labels")
    with_frozen = Exceedance(n_above=40, n=1040, effective=1040.0, source=learned.source)
    low_labels = np.linspace(0.1, 0.5, 1000)
    assert candidate_threshold(low_labels, 1.0, policy, exceedance=learned).outcome == "applied"
    held = candidate_threshold(
        low_labels, 1.0, policy, exceedance=replace(learned, with_frozen=with_frozen)
    )
    assert held.outcome == "unchanged", held.message
    assert "40 of the 40 the learning freeze kept out" in held.message
    assert (held.statistics["n_frozen"], held.statistics["n_frozen_above_current"]) == (40, 40)
    # Nor does a fault the freeze kept out raise it: without them the rate holds 1%.
    nominal = Exceedance(n_above=10, n=1000, effective=1000.0, source=learned.source)
    faulty = Exceedance(n_above=210, n=1200, effective=1200.0, source=learned.source)
    high_labels = np.r_[np.linspace(0.1, 0.9, 990), np.full(210, 2.0)]
    raised = candidate_threshold(
        high_labels, 1.0, policy, exceedance=replace(nominal, with_frozen=faulty)
    )
    assert raised.outcome == "unchanged", raised.message


def test_the_robust_method_has_no_evidence_check() -> None:
    policy = RecalibrationPolicy(
        method="robust", quantile=0.99, min_samples=5, max_relative_change=0.5
    )
    result = candidate_threshold([1.0, 1.1, 0.9, 1.05, 0.95], 1.0, policy, exceedance=None)
    assert "n_effective" not in result.statistics and result.outcome == "applied"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"quantile": 1.0},
        {"confidence": 1.0},
        {"confidence": 0.0},
        {"min_samples": 1},
        {"max_relative_change": 0.0},
        {"min_relative_change": 0.3, "max_relative_change": 0.2},
        {"mad_k": 0.0},
    ],
)
def test_policy_rejects_nonsense(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RecalibrationPolicy(**kwargs)  # type: ignore[arg-type]


async def eventually(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Polls instead of sleeping a fixed time: a loaded machine only makes it slower."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)


async def test_loop_runs_on_interval_and_on_label_trigger_and_stops_cleanly() -> None:
    triggers: list[str] = []

    async def run_once(trigger: str) -> None:
        triggers.append(trigger)

    loop = RecalibrationLoop(interval_s=0.05, label_trigger=3)
    loop.start(run_once)
    await eventually(lambda: triggers.count("interval") >= 2)
    slow = RecalibrationLoop(interval_s=60, label_trigger=3)
    triggers.clear()
    await loop.stop()
    assert not loop.running
    slow.start(run_once)
    slow.notify_labels(2)
    await asyncio.sleep(0.02)
    assert triggers == []
    slow.notify_labels(1)
    await eventually(lambda: bool(triggers))
    assert triggers == ["labels"]
    await slow.stop()
    await slow.stop()  # idempotent


async def test_loop_survives_a_failing_run() -> None:
    calls = 0

    async def flaky(trigger: str) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("store down")

    loop = RecalibrationLoop(interval_s=0.02, label_trigger=0)
    loop.start(flaky)
    await eventually(lambda: calls >= 2)
    await loop.stop()
    assert calls >= 2
