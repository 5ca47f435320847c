"""Metrics against small cases computed by hand."""

from __future__ import annotations

import doctest
import math

import numpy as np
import pytest

from models import metrics
from models.metrics import (
    BinaryMetrics,
    average_precision,
    capacity_diagnosis,
    chance_false_alarms_exceed,
    evaluate_detector,
    precision_recall_curve,
    recall_at_false_alarm_rate,
    roc_auc,
    roc_curve,
    separability,
    threshold_at_false_alarm_rate,
)


def test_roc_auc_counts_pairs() -> None:
    # anomalies 0.35 and 0.8 against normals 0.1 and 0.4: 3 of 4 pairs ordered right
    assert roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])) == pytest.approx(0.75)


def test_roc_auc_perfect_inverted_and_tied() -> None:
    labels = np.array([0, 0, 1, 1])
    assert roc_auc(np.array([1.0, 2.0, 3.0, 4.0]), labels) == pytest.approx(1.0)
    assert roc_auc(np.array([4.0, 3.0, 2.0, 1.0]), labels) == pytest.approx(0.0)
    assert roc_auc(np.ones(4), labels) == pytest.approx(0.5)
    # one tie across classes (2 vs 2) is half a pair: (1 + 0.5 + 1 + 1) / 4
    assert roc_auc(np.array([1.0, 2.0, 2.0, 3.0]), labels) == pytest.approx(0.875)


def test_roc_auc_matches_mann_whitney_on_random_scores() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.normal(size=300), 1)  # rounding creates many ties
    labels = rng.random(300) < 0.3
    pos, neg = scores[labels], scores[~labels]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert roc_auc(scores, labels) == pytest.approx(wins / (pos.size * neg.size))


def test_roc_curve_points() -> None:
    fpr, tpr, thresholds = roc_curve(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    assert thresholds[0] == math.inf
    np.testing.assert_allclose(thresholds[1:], [0.8, 0.4, 0.35, 0.1])


def test_average_precision_by_hand() -> None:
    # ranked: 0.8 (anomaly) P=1 R=.5 ; 0.4 (normal) ; 0.35 (anomaly) P=2/3 R=1
    scores, labels = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    assert average_precision(scores, labels) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    precision, recall, _ = precision_recall_curve(scores, labels)
    np.testing.assert_allclose(precision, [1, 0.5, 2 / 3, 0.5])
    np.testing.assert_allclose(recall, [0.5, 0.5, 1, 1])


def test_average_precision_perfect_and_worst() -> None:
    labels = np.array([0, 0, 0, 1])
    assert average_precision(np.array([1.0, 2.0, 3.0, 4.0]), labels) == pytest.approx(1.0)
    assert average_precision(np.array([4.0, 3.0, 2.0, 1.0]), labels) == pytest.approx(0.25)


def test_curves_refuse_single_class_and_non_finite() -> None:
    with pytest.raises(ValueError, match="both normal"):
        roc_auc(np.array([1.0, 2.0]), np.array([0, 0]))
    with pytest.raises(ValueError, match="finite"):
        roc_auc(np.array([1.0, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match="labels"):
        roc_auc(np.array([1.0, 2.0, 3.0]), np.array([0, 1]))


def test_binary_metrics_by_hand() -> None:
    flags = np.array([1, 1, 0, 0, 1, 0], dtype=bool)
    labels = np.array([1, 0, 1, 0, 1, 0], dtype=bool)
    m = BinaryMetrics.from_flags(flags, labels)
    assert (m.tp, m.fp, m.tn, m.fn) == (2, 1, 2, 1)
    assert m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 3)
    assert m.f1 == pytest.approx(2 / 3)
    assert m.false_alarm_rate == pytest.approx(1 / 3)
    assert m.missed_detection_rate == pytest.approx(1 / 3)
    summed = m + BinaryMetrics(tp=0, fp=1, tn=0, fn=1)
    assert (summed.tp, summed.fp, summed.tn, summed.fn) == (2, 2, 2, 2)
    assert math.isnan(BinaryMetrics(0, 0, 5, 0).recall)


def test_threshold_at_false_alarm_rate() -> None:
    normals = np.arange(100.0)
    assert threshold_at_false_alarm_rate(normals, 0.05) == 94.0
    assert np.mean(normals > 94.0) == pytest.approx(0.05)
    assert threshold_at_false_alarm_rate(normals, 0.0) == 99.0
    assert threshold_at_false_alarm_rate(normals, 0.999) == 0.0
    with pytest.raises(ValueError):
        threshold_at_false_alarm_rate(normals, 1.0)


def test_doctests() -> None:
    assert doctest.testmod(metrics).failed == 0


@pytest.mark.parametrize(
    ("n_limit", "n_test", "quantile", "bar"),
    [(480, 480, 0.95, 0.05), (100, 300, 0.9, 0.1), (50, 40, 0.99, 0.0), (7, 20, 0.5, 0.5)],
)
def test_chance_false_alarms_exceed_matches_simulation(
    n_limit: int, n_test: int, quantile: float, bar: float
) -> None:
    """The closed form against the protocol run 20,000 times on independent uniform scores."""
    rng = np.random.default_rng(7)
    limit_scores = rng.random((20_000, n_limit))
    test_scores = rng.random((20_000, n_test))
    limits = np.quantile(limit_scores, quantile, axis=1, method="higher")
    shares = np.mean(test_scores > limits[:, None], axis=1)
    simulated = float(np.mean(shares > bar + 1e-12))
    assert chance_false_alarms_exceed(n_limit, n_test, quantile, bar) == pytest.approx(
        simulated, abs=0.015
    )


def test_chance_false_alarms_exceed_edges() -> None:
    # A limit near the top of many readings is rarely beaten; a median limit is almost never
    # beaten by 99% of fresh readings.
    assert chance_false_alarms_exceed(10_000, 100, 0.9999, 0.05) < 1e-6
    assert chance_false_alarms_exceed(100, 100, 0.5, 0.99) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        chance_false_alarms_exceed(0, 10, 0.95, 0.05)
    with pytest.raises(ValueError):
        chance_false_alarms_exceed(10, 10, 1.0, 0.05)


def test_recall_at_false_alarm_rate() -> None:
    normals = np.arange(100.0)
    anomalies = np.array([50.0, 95.0, 96.0, 200.0])
    scores = np.r_[normals, anomalies]
    labels = np.r_[np.zeros(100), np.ones(4)]
    point = recall_at_false_alarm_rate(scores, labels, 0.05)
    assert point.threshold == 94.0
    assert point.recall == pytest.approx(0.75)
    assert point.false_alarm_rate == pytest.approx(0.05)


def test_separability_detects_shift_and_not_noise() -> None:
    rng = np.random.default_rng(0)
    normal = rng.lognormal(0.0, 0.5, 500)
    shifted = rng.lognormal(1.0, 0.5, 500)
    same = rng.lognormal(0.0, 0.5, 500)
    strong = separability(normal, shifted)
    assert strong.p_value < 1e-20
    assert strong.cohens_d == pytest.approx(2.0, abs=0.3)  # log-shift 1 / sd 0.5
    weak = separability(normal, same)
    assert weak.p_value > 1e-3
    assert abs(weak.cohens_d) < 0.2


def test_capacity_diagnosis_rule() -> None:
    normal = np.full(100, 1.0)
    assert capacity_diagnosis(normal, np.full(50, 1.2), auc=0.9).ok is False
    assert capacity_diagnosis(normal, np.full(50, 3.0), auc=0.55).ok is False
    good = capacity_diagnosis(normal, np.full(50, 3.0), auc=0.95)
    assert good.ok and good.median_ratio == pytest.approx(3.0)
    assert "WARNING" in capacity_diagnosis(normal, normal[:50], auc=0.5).message


def test_evaluate_detector_per_kind_and_flags_strictly_above() -> None:
    scores = np.array([1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 2.5, 1.5])
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    kinds = np.array(["", "", "", "", "spike", "spike", "drift", "drift"])
    result = evaluate_detector(
        "toy", scores, labels, threshold=3.0, threshold_source="hand", kinds=kinds
    )
    # flagged: 4.0 (normal), 10, 10 -> the normal at exactly 3.0 is not flagged
    assert (result.at_threshold.tp, result.at_threshold.fp) == (2, 1)
    assert result.per_kind["spike"].recall == 1.0
    assert result.per_kind["drift"].recall == 0.0
    assert result.per_kind["drift"].fp == 1  # each kind is scored against every normal
    body = result.to_dict()
    assert body["at_threshold"]["false_alarm_rate"] == pytest.approx(0.25)
    assert set(body["per_kind"]) == {"spike", "drift"}


def test_false_alarms_of_normal_operation_leave_out_the_labelled_file() -> None:
    """A model with memory flags the readings just after a fault: they count in the false-alarm
    rate at the threshold but not in that of the normal file alone."""
    scores = np.array([1.0, 1.0, 1.0, 5.0, 9.0, 9.0, 6.0, 6.0, 1.0, 1.0])
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0], dtype=bool)
    operation = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)  # the normal file
    result = evaluate_detector(
        "toy", scores, labels, threshold=3.0, threshold_source="hand", operation=operation
    )
    assert result.at_threshold.false_alarm_rate == pytest.approx(3 / 8)
    assert result.operation_false_alarm_rate == pytest.approx(1 / 4)
    assert result.to_dict()["operation_false_alarm_rate"] == pytest.approx(0.25)
    unknown = evaluate_detector("toy", scores, labels, threshold=3.0, threshold_source="hand")
    assert np.isnan(unknown.operation_false_alarm_rate)
    with pytest.raises(ValueError, match="cannot be labelled anomalous"):
        evaluate_detector(
            "toy", scores, labels, threshold=3.0, threshold_source="hand", operation=labels
        )


def test_recall_at_a_false_alarm_rate_is_set_on_normal_operation_where_known() -> None:
    """The readings just after a fault, still high for a model with memory, would set the
    cut-off at a 25% false-alarm rate above both faults; on the normal file alone it sits
    among normal operation's scores and catches them."""
    scores = np.array([1.0, 1.1, 1.2, 1.3, 8.0, 7.0, 9.0, 9.5, 8.5, 1.0])
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0], dtype=bool)
    operation = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    pooled = evaluate_detector(
        "toy", scores, labels, threshold=3.0, threshold_source="hand", false_alarm_rates=[0.25]
    )
    (everywhere,) = pooled.recall_at_far
    assert everywhere.recall == 0.0 and not everywhere.on_operation
    known = evaluate_detector(
        "toy",
        scores,
        labels,
        threshold=3.0,
        threshold_source="hand",
        false_alarm_rates=[0.25],
        operation=operation,
    )
    (alone,) = known.recall_at_far
    assert alone.recall == 1.0 and alone.on_operation
    assert alone.false_alarm_rate <= 0.25
