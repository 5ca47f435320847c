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
    assert candidate_threshold([1.005] * 5, 1.0, policy).outcome == "unchanged"
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


@pytest.mark.parametrize(
    "kwargs",
    [
        {"quantile": 1.0},
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
