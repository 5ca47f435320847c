"""The threshold from calibration errors (models/threshold.py): its interval, and the tails
that cannot back one."""

from __future__ import annotations

import numpy as np
import pytest

from models.threshold import (
    DegenerateCalibration,
    estimate_threshold,
    excursions,
)
from service.calibration.evidence import clopper_pearson


def test_threshold_interval_and_small_sample_warning() -> None:
    rng = np.random.default_rng(0)
    big = estimate_threshold(rng.exponential(size=5000), 0.99, source="x")
    assert big.warning is None
    assert big.n_calibration == 5000
    assert big.n_exceeding == 49  # the "higher" order statistic leaves 49 of 5000 above it
    low, high = big.false_alarm_rate_ci
    assert low < 0.01 < high and high - low < 0.01
    small = estimate_threshold(rng.exponential(size=500), 0.99, source="x")
    assert small.warning is not None and "at least 1000" in small.warning
    assert small.false_alarm_rate_ci[1] - small.false_alarm_rate_ci[0] > high - low


def test_a_tail_of_few_excursions_widens_the_interval_and_warns() -> None:
    """The same 5000 errors, smoothed: as many lie beyond the quantile, but in a few long
    excursions, so the threshold rests on a few events and the interval says so."""
    rng = np.random.default_rng(1)
    raw = rng.exponential(size=5000)
    smoothed = np.convolve(raw, np.ones(400) / 400, mode="valid")
    sharp = estimate_threshold(raw, 0.99, source="x")
    slow = estimate_threshold(smoothed, 0.99, source="x")
    assert sharp.warning is None and sharp.n_excursions > 40
    assert slow.n_exceeding > 40 and slow.n_excursions < 10
    assert slow.warning is not None and f"only {slow.n_excursions} separate" in slow.warning
    width = slow.false_alarm_rate_ci[1] - slow.false_alarm_rate_ci[0]
    assert width > 3 * (sharp.false_alarm_rate_ci[1] - sharp.false_alarm_rate_ci[0])


def test_a_flat_calibration_tail_is_refused_with_the_numbers() -> None:
    errors = np.zeros(2000)
    errors[:10] = np.linspace(0.1, 1.0, 10)
    with pytest.raises(DegenerateCalibration, match=r"is 0, no higher than their median 0"):
        estimate_threshold(errors, 0.99, source="mostly zeros")
    saturated = np.random.default_rng(0).uniform(0.0, 1.0, 2000)
    saturated[-100:] = 5.0  # a quantised or saturated tail: warned about, not refused
    warned = estimate_threshold(saturated, 0.99, source="saturated")
    assert warned.value == 5.0 and warned.warning is not None
    assert "100 of the 2000 calibration errors are exactly 5, the threshold" in warned.warning


def test_a_threshold_resting_on_one_outlier_is_warned_about() -> None:
    errors = np.random.default_rng(0).uniform(0.9, 1.0, 99)
    errors = np.append(errors, 50.0)
    estimate = estimate_threshold(errors, 0.99, source="one glitch")
    assert estimate.value == 50.0
    assert estimate.warning is not None and "rests on an outlier" in estimate.warning
    assert "times the next calibration error" in estimate.warning
    healthy = estimate_threshold(np.random.default_rng(0).gamma(2.0, size=5000), 0.99, source="ok")
    assert healthy.warning is None


def test_excursions_count_runs_at_the_edges() -> None:
    assert excursions(np.array([], dtype=bool)) == 0
    assert excursions(np.ones(5, dtype=bool)) == 1
    assert excursions(np.array([True, False, True, True, False])) == 2
    assert excursions(np.array([False, False])) == 0


def test_a_tail_no_calibration_error_exceeds_keeps_the_plain_interval() -> None:
    """The "higher" order statistic can leave no error above it (a maximum that ties): the
    interval is then the one for 0 exceedances in every reading, not a division by zero."""
    errors = np.r_[np.linspace(0.0, 1.0, 990), np.full(10, 2.0)]
    estimate = estimate_threshold(errors, 0.99, source="x")
    assert estimate.n_exceeding == 0 and estimate.n_excursions == 0
    assert estimate.false_alarm_rate_ci == clopper_pearson(0, 1000)
