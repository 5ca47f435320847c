"""The candidate rule and the background loop's scheduling."""

from __future__ import annotations

import asyncio
import doctest
import time
from collections.abc import Callable

import numpy as np
import pytest

from service.calibration import recalibrator
from service.calibration.recalibrator import (
    RecalibrationLoop,
    RecalibrationPolicy,
    candidate_threshold,
    exceedance_evidence,
    review_weights,
)


def test_doctests() -> None:
    assert doctest.testmod(recalibrator).failed == 0


def test_quantile_candidate_within_cap_is_applied() -> None:
    rng = np.random.default_rng(0)
    errors = rng.gamma(2.0, 0.5, size=2000)
    q = float(np.quantile(errors, 0.99))
    result = candidate_threshold(errors, q * 0.9, RecalibrationPolicy(quantile=0.99))
    assert result.outcome == "applied"
    assert result.value == pytest.approx(q)
    assert result.relative_change == pytest.approx(1 / 0.9 - 1)
    assert result.statistics["n_samples"] == 2000


def test_move_beyond_cap_in_either_direction_is_pending() -> None:
    policy = RecalibrationPolicy(quantile=0.5, min_samples=5, max_relative_change=0.2)
    up = candidate_threshold([1.3] * 10, 1.0, policy)
    down = candidate_threshold([0.7] * 10, 1.0, policy)
    assert (up.outcome, down.outcome) == ("pending", "pending")
    assert up.value == pytest.approx(1.3) and down.value == pytest.approx(0.7)
    edge = candidate_threshold([1.2] * 10, 1.0, policy)
    assert edge.outcome == "applied"


def test_tiny_change_is_unchanged_and_too_few_is_insufficient() -> None:
    policy = RecalibrationPolicy(quantile=0.5, min_samples=5, min_relative_change=0.01)
    tiny = candidate_threshold([1.005] * 50, 1.0, policy)  # all above: the threshold is wrong
    assert tiny.outcome == "unchanged" and "within 1% of current" in tiny.message
    few = candidate_threshold([1.1] * 4, 1.0, policy)
    assert few.outcome == "insufficient" and few.value is None and few.n_samples == 4
    # Non-finite errors never count toward the sample.
    assert candidate_threshold([1.1] * 4 + [float("nan")], 1.0, policy).outcome == "insufficient"


def test_robust_variant_resists_a_minority_of_outliers() -> None:
    rng = np.random.default_rng(1)
    clean = rng.normal(1.0, 0.1, size=500)
    polluted = np.concatenate([clean, np.full(40, 50.0)])  # 7% mislabelled anomalies
    robust = RecalibrationPolicy(method="robust", mad_k=3.0, max_relative_change=10.0)
    quantile = RecalibrationPolicy(method="quantile", quantile=0.99, max_relative_change=100.0)
    r = candidate_threshold(polluted, 1.3, robust)
    q = candidate_threshold(polluted, 1.3, quantile)
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
            candidate_threshold(rng.exponential(size=n), threshold, policy).outcome
            for _ in range(200)
        ]
        assert moves(outcomes) <= 6, (n, outcomes)  # 1% expected: at most 3%
        # The rule before applied or held every candidate beyond the minimum change.
        changes = [
            candidate_threshold(rng.exponential(size=n), threshold, policy).relative_change
            for _ in range(50)
        ]
        beyond = [c for c in changes if c is not None and abs(c) >= policy.min_relative_change]
        assert len(beyond) >= (40 if n <= 1000 else 25), (n, changes)  # 90%+, 73% measured


def test_a_real_shift_moves_it_once_the_labels_show_it() -> None:
    rng = np.random.default_rng(6)
    threshold = float(np.log(100.0))
    policy = RecalibrationPolicy(max_relative_change=1.0)
    # Errors 1.3 times as large: 2.9% of them above the threshold, their 0.99 quantile 30% up.
    outcomes = [
        candidate_threshold(1.3 * rng.exponential(size=2000), threshold, policy) for _ in range(100)
    ]
    assert moves([c.outcome for c in outcomes]) >= 95
    moved = [c.relative_change for c in outcomes if c.relative_change is not None]
    assert np.median(moved) == pytest.approx(0.3, abs=0.05)
    # Errors 0.7 times as large: 0.14% above it; two thousand readings rule out 1%.
    lower = [
        candidate_threshold(0.7 * rng.exponential(size=2000), threshold, policy) for _ in range(100)
    ]
    assert moves([c.outcome for c in lower]) >= 95
    assert all(c.relative_change is not None and c.relative_change < 0 for c in lower)


def test_a_stretch_labelled_in_one_request_counts_by_the_memory() -> None:
    """The same errors, 3% above the threshold: 1,000 readings labelled one by one show it;
    labelled as one stretch of a process that remembers 50 readings, they are worth about
    21 independent ones, which cannot tell 3% from 1%."""
    errors = np.where(np.arange(1000) % 100 < 3, 2.0, 0.5)
    policy = RecalibrationPolicy(max_relative_change=0.5)
    alone = candidate_threshold(errors, 1.0, policy)
    assert alone.outcome == "pending" and alone.statistics["n_effective"] == pytest.approx(1000)
    stretch = candidate_threshold(errors, 1.0, policy, spans=["a"] * 1000, memory=50.0)
    assert stretch.outcome == "unchanged", stretch.message
    assert stretch.statistics["n_effective"] == pytest.approx(1 + 999 / 50)
    assert "worth about 21 independent readings" in stretch.message
    assert stretch.value == alone.value  # the candidate is recorded all the same
    # Ten stretches of 100 count 1 + 99 / 50 each: about 30.
    tens = candidate_threshold(
        errors, 1.0, policy, spans=[str(i // 100) for i in range(1000)], memory=50.0
    )
    assert tens.statistics["n_effective"] == pytest.approx(10 * (1 + 99 / 50))


def test_unequal_weights_shrink_the_effective_size() -> None:
    errors = np.where(np.arange(1000) < 20, 2.0, 0.5)
    weights = review_weights(np.arange(1000) < 20, 0.02)
    even = exceedance_evidence(errors, np.ones(1000), 1.0, RecalibrationPolicy(), 1000.0)
    weighted = exceedance_evidence(errors, weights, 1.0, RecalibrationPolicy(), 1000.0)
    assert even.effective == pytest.approx(1000) and even.share == pytest.approx(0.02)
    assert weighted.share == pytest.approx(0.02)
    skewed = review_weights(np.arange(1000) < 20, 0.2)  # 20 labels carry a fifth of the mass
    assert exceedance_evidence(errors, skewed, 1.0, RecalibrationPolicy(), 1000.0).effective < (
        0.5 * 1000
    )


def test_the_robust_method_has_no_evidence_check() -> None:
    policy = RecalibrationPolicy(
        method="robust", quantile=0.99, min_samples=5, max_relative_change=0.5
    )
    result = candidate_threshold([1.0, 1.1, 0.9, 1.05, 0.95], 1.0, policy)
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
