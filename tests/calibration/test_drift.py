"""KS drift statistics, Benjamini–Hochberg and the recommendation rule."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
from scipy import stats

from service.calibration import drift
from service.calibration.drift import DriftPolicy, benjamini_hochberg, drift_report
from service.calibration.evidence import NormalMemory, normal_memory

SENSORS = [f"s{i}" for i in range(6)]


def test_doctests() -> None:
    assert doctest.testmod(drift).failed == 0


def squared_errors(rng: np.random.Generator, n: int, scale: np.ndarray) -> np.ndarray:
    """Per-sensor squared errors of Gaussian residuals: chi-square with one dof, scaled."""
    return (rng.normal(0.0, 1.0, size=(n, len(SENSORS))) * scale) ** 2


def test_bh_matches_a_hand_computation_and_is_monotone() -> None:
    p = np.array([0.001, 0.008, 0.039, 0.041, 0.042, 0.06, 0.074, 0.205, 0.212, 0.216])
    adjusted = benjamini_hochberg(p)
    # sorted input: q_i = min_{j>=i} p_j * m / j
    expected = np.minimum.accumulate((p * 10 / np.arange(1, 11))[::-1])[::-1]
    np.testing.assert_allclose(adjusted, expected)
    assert np.all(np.diff(adjusted) >= 0)
    assert benjamini_hochberg([]).size == 0


def test_same_distribution_recommends_nothing() -> None:
    rng = np.random.default_rng(7)
    ones = np.ones(len(SENSORS))
    report = drift_report(
        squared_errors(rng, 2000, ones), squared_errors(rng, 400, ones), SENSORS, DriftPolicy()
    )
    assert report.sufficient and not report.drifted
    assert report.drifted_sensors == []
    assert report.recommendation == "none"
    assert report.statistic is not None and report.statistic < 0.1


def test_moderate_uniform_shift_recommends_recalibration() -> None:
    rng = np.random.default_rng(8)
    reference = squared_errors(rng, 2000, np.ones(len(SENSORS)))
    recent = squared_errors(rng, 400, np.full(len(SENSORS), 1.15))
    report = drift_report(reference, recent, SENSORS, DriftPolicy())
    assert report.drifted
    assert report.statistic is not None and 0.1 <= report.statistic < 0.3
    assert report.recommendation == "recalibrate"


def test_large_shift_recommends_retraining() -> None:
    rng = np.random.default_rng(9)
    reference = squared_errors(rng, 2000, np.ones(len(SENSORS)))
    recent = squared_errors(rng, 400, np.full(len(SENSORS), 2.0))
    report = drift_report(reference, recent, SENSORS, DriftPolicy())
    assert report.recommendation == "retrain"
    assert len(report.drifted_sensors) == len(SENSORS)


def test_single_sensor_drift_hidden_in_the_mean_recommends_retraining() -> None:
    rng = np.random.default_rng(10)
    reference = squared_errors(rng, 3000, np.ones(len(SENSORS)))
    scale = np.ones(len(SENSORS))
    scale[2] = 1.4
    recent = squared_errors(rng, 600, scale)
    report = drift_report(reference, recent, SENSORS, DriftPolicy())
    assert report.drifted_sensors == ["s2"]
    assert not report.drifted
    assert report.recommendation == "retrain"


def test_tiny_effect_is_not_drift_even_when_significant() -> None:
    """With huge samples KS rejects a 3% scale change; the minimum effect size keeps it quiet."""
    rng = np.random.default_rng(11)
    reference = squared_errors(rng, 20_000, np.ones(len(SENSORS)))
    recent = squared_errors(rng, 20_000, np.full(len(SENSORS), 1.03))
    report = drift_report(reference, recent, SENSORS, DriftPolicy())
    assert report.pvalue is not None and report.pvalue < 0.01
    assert not report.drifted and report.recommendation == "none"


def test_too_few_recent_normals_is_not_judged() -> None:
    rng = np.random.default_rng(12)
    reference = squared_errors(rng, 500, np.ones(len(SENSORS)))
    report = drift_report(
        reference, squared_errors(rng, 10, np.full(6, 5.0)), SENSORS, DriftPolicy()
    )
    assert not report.sufficient and report.recommendation == "none"
    assert report.statistic is None and report.sensors == ()


def test_rejects_mismatched_reference() -> None:
    with pytest.raises(ValueError, match="shape"):
        drift_report(np.ones((10, 3)), np.ones((60, 6)), SENSORS, DriftPolicy())


@pytest.mark.slow
def test_with_nothing_shifted_a_recommendation_comes_at_most_alpha_of_the_time() -> None:
    """The reading-error test and the sensors' family share alpha (0.01), so 1000 draws of
    recent normals from the reference's own distribution (50 sensors, 50-500 readings) get a
    recommendation other than 'none' at most 1% of the time. (Before the split: 1.55% over
    2000 draws.)"""
    rng = np.random.default_rng(0)
    sensors = [f"s{i}" for i in range(50)]
    policy = DriftPolicy()
    false = 0
    for _ in range(1000):
        reference = rng.chisquare(1, size=(1000, 50))
        recent = rng.chisquare(1, size=(int(rng.integers(50, 500)), 50))
        report = drift_report(reference, recent, sensors, policy, normal_memory(reference))
        false += report.recommendation != "none"
    assert false <= 10


def ar_squared_errors(rng: np.random.Generator, n: int, phi: float) -> np.ndarray:
    """Squared errors of per-sensor AR(1) residuals in time order: what a model over a window
    of a process with memory gives for consecutive normal readings."""
    noise = rng.normal(size=(n, len(SENSORS)))
    out = np.empty_like(noise)
    out[0] = noise[0]
    for i in range(1, n):
        out[i] = phi * out[i - 1] + np.sqrt(1 - phi**2) * noise[i]
    return out**2


def test_a_stretch_of_consecutive_normal_readings_is_not_drift() -> None:
    """Labels given to a time range are consecutive readings: counted at their raw number,
    KS takes the stretch's own slice of normal operation for a shifted distribution (the
    p-values at raw counts below show it would); counted by normal operation's memory,
    measured on the (consecutive) calibration run, it does not."""
    rng = np.random.default_rng(13)
    raw_rejections = judged = 0
    for _ in range(20):
        reference = ar_squared_errors(rng, 1000, 0.95)
        recent = ar_squared_errors(rng, 160, 0.95)
        memory = normal_memory(reference)
        report = drift_report(reference, recent, SENSORS, DriftPolicy(), memory)
        judged += report.recommendation != "none"
        assert report.effective_recent == pytest.approx(1 + 159 / memory.reading)
        assert memory.reading > 5 and min(memory.sensors) > 5
        raw = stats.ks_2samp(reference.mean(axis=1), recent.mean(axis=1)).pvalue
        raw_rejections += raw < DriftPolicy().alpha / 2
        assert drift_report(reference, recent, SENSORS, DriftPolicy()).effective_recent == 160
    assert raw_rejections >= 10
    assert judged <= 1


def test_a_shift_inside_the_recent_window_is_still_drift() -> None:
    """The recent normals' own autocorrelation is not used: labels from before and after a
    change, in label order, would read as a long memory and hide the change itself."""
    rng = np.random.default_rng(15)
    reference = squared_errors(rng, 1000, np.ones(6))
    recent = np.vstack(
        [squared_errors(rng, 300, np.ones(6)), squared_errors(rng, 400, np.full(6, 1.6))]
    )
    report = drift_report(reference, recent, SENSORS, DriftPolicy(), normal_memory(reference))
    assert report.recommendation in ("recalibrate", "retrain")
    assert report.effective_recent is not None and report.effective_recent > 0.8 * 700


def test_independent_readings_keep_about_their_count() -> None:
    rng = np.random.default_rng(14)
    reference = squared_errors(rng, 2000, np.ones(6))
    memory = normal_memory(reference)
    assert memory.reading < 1.3 and max(memory.sensors) < 1.3
    report = drift_report(
        reference, squared_errors(rng, 400, np.ones(6)), SENSORS, DriftPolicy(), memory
    )
    assert report.effective_recent is not None and 0.75 * 400 <= report.effective_recent <= 400
    assert report.effective_reference is not None and report.effective_reference >= 1500


@pytest.mark.parametrize(
    ("spans", "effective"),
    [
        (None, 1 + 99 / 10),
        (["one request"] * 100, 1 + 99 / 10),
        (["a"] * 50 + ["b"] * 50, 2 * (1 + 49 / 10)),
        ([f"request {i}" for i in range(100)], 100.0),
    ],
)
def test_labels_count_by_span_each_span_by_the_memory(
    spans: list[str] | None, effective: float
) -> None:
    """Readings labelled one per request are as good as independent; the labels of one
    request for one stream (a time range, carried readings, a batch's ids) may be
    neighbours: a span of L counts 1 + (L - 1) / tau."""
    rng = np.random.default_rng(16)
    memory = NormalMemory(10.0, (10.0,) * len(SENSORS))
    reference = squared_errors(rng, 1000, np.ones(6))
    recent = squared_errors(rng, 100, np.ones(6))
    report = drift_report(reference, recent, SENSORS, DriftPolicy(), memory, spans)
    assert report.effective_recent == pytest.approx(effective)


def test_a_shift_too_weakly_supported_says_so_not_that_nothing_moved() -> None:
    """60 labels of one stretch, with a memory of 53 readings, are worth about 2: a large D
    is not beyond chance, and the reason says why instead of "no drift"."""
    rng = np.random.default_rng(17)
    memory = NormalMemory(53.0, (53.0,) * len(SENSORS))
    reference = squared_errors(rng, 1000, np.ones(6))
    recent = squared_errors(rng, 60, np.full(6, 1.6))
    report = drift_report(reference, recent, SENSORS, DriftPolicy(), memory, ["one"] * 60)
    assert report.recommendation == "none" and report.statistic is not None
    assert report.statistic >= DriftPolicy().min_effect
    assert "not beyond chance for recent normals worth about 2 independent" in report.reason


@pytest.mark.parametrize("seed", range(5))
def test_the_sensors_ks_tests_at_once_equal_one_test_per_sensor(seed: int) -> None:
    """Each column counted at its own sizes, as scipy tests it alone: constant columns, ties,
    an infinite value and columns of one row included."""
    rng = np.random.default_rng(seed)
    n_ref, n_rec = (1, 1) if seed == 4 else (int(rng.integers(2, 400)), int(rng.integers(2, 90)))
    reference = rng.chisquare(1, size=(n_ref, 6)).round(1)  # ties
    recent = rng.chisquare(1, size=(n_rec, 6)) * rng.uniform(0.5, 2.0, size=6)
    reference[:, 0] = recent[:, 0] = 1.0  # constant
    reference[0, 1] = np.inf
    m = rng.uniform(1.0, n_ref + 1.0, size=6)
    n = rng.uniform(1.0, n_rec + 1.0, size=6)
    statistics, pvalues = drift._ks_columns(reference, recent, m, n)
    for j in range(6):
        alone = stats.ks_2samp(reference[:, j], recent[:, j]).statistic
        en = max(1, round(m[j] * n[j] / (m[j] + n[j])))
        assert statistics[j] == alone
        assert pvalues[j] == stats.kstwo.sf(alone, en)


def test_each_sensor_is_counted_at_its_own_memory() -> None:
    """The reference at its rows over the sensor's own memory in it, the recent normals by
    span at the sensor's memory from training: a sensor that remembers longer counts fewer
    independent readings, so the same shift is less significant."""
    rng = np.random.default_rng(7)
    reference = ar_squared_errors(rng, 1000, 0.9)
    recent = ar_squared_errors(rng, 200, 0.9) * 1.3
    sensor_memory = tuple(1.0 + 4.0 * j for j in range(len(SENSORS)))
    memory = NormalMemory(reading=3.0, sensors=sensor_memory)
    spans = [str(i // 40) for i in range(200)]
    report = drift_report(reference, recent, SENSORS, DriftPolicy(), memory, spans)
    own = normal_memory(reference)
    lengths = np.full(5, 40.0)
    for j, sensor in enumerate(report.sensors):
        m = len(reference) / own.sensors[j]
        n = float(np.sum(1.0 + (lengths - 1.0) / sensor_memory[j]))
        d = stats.ks_2samp(reference[:, j], recent[:, j]).statistic
        assert sensor.statistic == d
        assert sensor.pvalue == stats.kstwo.sf(d, max(1, round(m * n / (m + n))))
