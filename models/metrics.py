"""Detection metrics on normal and labelled anomalous readings: does a score separate them?

Every figure here is computed from per-reading scores (a reading's reconstruction error, or a
PCA statistic) and boolean labels, so the autoencoder and the PCA baseline are measured by the
same code on the same readings. A reading is flagged when its score is strictly above the
threshold, as the service decides.

The curve metrics are implemented here in numpy (no scikit-learn): ROC-AUC with ties scored
half (the Mann-Whitney statistic) and PR-AUC as average precision (the step-wise area, which
does not interpolate optimistically between operating points).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from models.separation import (
    NO_ADVICE,
    Advice,
    CapacityDiagnosis,
    KindVerdict,
    Separability,
    capacity_diagnosis,
    kind_verdict,
    separability,
    verdict_summary,
)

DEFAULT_FALSE_ALARM_RATES: tuple[float, ...] = (0.01, 0.05)


def _as_scores_and_labels(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(labels).ravel().astype(bool)
    if s.shape != y.shape:
        raise ValueError(f"{s.size} scores but {y.size} labels")
    if not np.isfinite(s).all():
        raise ValueError("scores must be finite")
    if not y.any() or y.all():
        raise ValueError("curves need both normal (label 0) and anomalous (label 1) readings")
    return s, y


def _distinct_threshold_counts(
    scores: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True and false positives when flagging ``score >= t`` for each distinct score ``t``,
    from the highest down: ties enter together, which is what makes tied scores half-credit."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s)), s.size - 1]
    tps = np.cumsum(y)[last_of_tie]
    fps = np.cumsum(~y)[last_of_tie]
    return tps.astype(np.float64), fps.astype(np.float64), s[last_of_tie]


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False-positive rates, true-positive rates and the thresholds (``score >= t``) behind
    them, starting at (0, 0) with an infinite threshold."""
    s, y = _as_scores_and_labels(scores, labels)
    tps, fps, thresholds = _distinct_threshold_counts(s, y)
    tpr = np.r_[0.0, tps / tps[-1]]
    fpr = np.r_[0.0, fps / fps[-1]]
    return fpr, tpr, np.r_[np.inf, thresholds]


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Probability that a random anomalous reading outscores a random normal one (ties: 1/2).

    >>> roc_auc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.75
    """
    fpr, tpr, _ = roc_curve(scores, labels)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def precision_recall_curve(
    scores: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision and recall at each distinct threshold (``score >= t``), highest threshold first."""
    s, y = _as_scores_and_labels(scores, labels)
    tps, fps, thresholds = _distinct_threshold_counts(s, y)
    return tps / (tps + fps), tps / tps[-1], thresholds


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """PR-AUC as average precision: sum over thresholds of (recall gained) x precision.

    >>> average_precision(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1]))
    0.8333333333333333
    """
    precision, recall, _ = precision_recall_curve(scores, labels)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


@dataclass(frozen=True)
class BinaryMetrics:
    """Counts and rates of one flagging decision against the labels."""

    tp: int
    fp: int
    tn: int
    fn: int

    @classmethod
    def from_flags(cls, flags: np.ndarray, labels: np.ndarray) -> BinaryMetrics:
        f = np.asarray(flags).ravel().astype(bool)
        y = np.asarray(labels).ravel().astype(bool)
        if f.shape != y.shape:
            raise ValueError(f"{f.size} flags but {y.size} labels")
        return cls(
            tp=int(np.sum(f & y)),
            fp=int(np.sum(f & ~y)),
            tn=int(np.sum(~f & ~y)),
            fn=int(np.sum(~f & y)),
        )

    def __add__(self, other: BinaryMetrics) -> BinaryMetrics:
        return BinaryMetrics(
            self.tp + other.tp, self.fp + other.fp, self.tn + other.tn, self.fn + other.fn
        )

    @property
    def precision(self) -> float:
        return _ratio(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _ratio(self.tp, self.tp + self.fn)

    @property
    def f1(self) -> float:
        return _ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn)

    @property
    def false_alarm_rate(self) -> float:
        return _ratio(self.fp, self.fp + self.tn)

    @property
    def missed_detection_rate(self) -> float:
        return _ratio(self.fn, self.fn + self.tp)

    def to_dict(self) -> dict[str, float | int]:
        return {
            **asdict(self),
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "false_alarm_rate": self.false_alarm_rate,
            "missed_detection_rate": self.missed_detection_rate,
        }


def _ratio(numerator: int, denominator: int) -> float:
    """NaN, not 0, when undefined: a recall with no anomalies is unknown, not zero."""
    return numerator / denominator if denominator else math.nan


def threshold_at_false_alarm_rate(normal_scores: np.ndarray, far: float) -> float:
    """The lowest threshold (flag ``score > t``) that flags at most ``far`` of these normals.

    >>> threshold_at_false_alarm_rate(np.arange(100.0), 0.05)
    94.0
    """
    if not 0.0 <= far < 1.0:
        raise ValueError(f"false-alarm rate must be in [0, 1), got {far}")
    ranked = np.sort(np.asarray(normal_scores, dtype=np.float64).ravel())[::-1]
    allowed = math.floor(far * ranked.size + 1e-9)
    return float(ranked[allowed]) if allowed < ranked.size else -math.inf


def chance_false_alarms_exceed(n_limit: int, n_test: int, quantile: float, bar: float) -> float:
    """Chance that more than ``bar`` of ``n_test`` fresh normal readings lie above a limit set
    at the ``quantile`` (numpy's "higher" order statistic) of ``n_limit`` others, when all the
    scores are independent draws of one distribution: how often a perfectly stable detector
    fails a false-alarm bar by sampling alone.

    The limit is the k-th smallest of ``n_limit`` scores, so the share of the distribution
    above it is Beta(n_limit - k + 1, k) whatever the distribution, and the count of fresh
    readings above it is beta-binomial.

    >>> round(chance_false_alarms_exceed(480, 480, 0.95, 0.05), 3)
    0.441
    """
    if n_limit < 1 or n_test < 1:
        raise ValueError(f"need readings on both sides, got {n_limit} and {n_test}")
    if not 0.0 < quantile < 1.0 or not 0.0 <= bar < 1.0:
        raise ValueError(f"quantile must be in (0, 1) and bar in [0, 1), got {quantile}, {bar}")
    rank = math.ceil(quantile * (n_limit - 1) - 1e-12) + 1
    allowed = math.floor(bar * n_test + 1e-9)
    return float(stats.betabinom.sf(allowed, n_test, n_limit - rank + 1, rank))


@dataclass(frozen=True)
class RecallAtFalseAlarmRate:
    """An ROC operating point: chosen on the evaluated normals (those of normal operation
    alone when they are known), so it describes the curve and is not a deployable
    threshold."""

    target_false_alarm_rate: float
    threshold: float
    recall: float
    false_alarm_rate: float
    on_operation: bool = False
    """Counted on the readings of normal operation alone (a run without faults), not on
    every reading labelled normal."""
    n_normals: int = 0
    """The normal readings the rate is counted on."""

    @property
    def rests_on(self) -> float:
        """How many normal readings the target rate lets above the cut-off: a handful makes
        the cut-off, and the recall at it, rough."""
        return self.target_false_alarm_rate * self.n_normals


def recall_at_false_alarm_rate(
    scores: np.ndarray, labels: np.ndarray, far: float, normals: np.ndarray | None = None
) -> RecallAtFalseAlarmRate:
    """``normals``: the normal readings the false-alarm rate is counted on (default: every
    reading not labelled anomalous)."""
    s, y = _as_scores_and_labels(scores, labels)
    quiet = ~y if normals is None else np.asarray(normals, dtype=bool).ravel() & ~y
    threshold = threshold_at_false_alarm_rate(s[quiet], far)
    return RecallAtFalseAlarmRate(
        target_false_alarm_rate=far,
        threshold=threshold,
        recall=float(np.mean(s[y] > threshold)),
        false_alarm_rate=float(np.mean(s[quiet] > threshold)),
        on_operation=normals is not None,
        n_normals=int(np.sum(quiet)),
    )


@dataclass(frozen=True)
class DetectorEvaluation:
    """Everything measured about one detector on one labelled set of readings."""

    detector: str
    threshold: float
    threshold_source: str
    n_normal: int
    n_anomalous: int
    roc_auc: float
    pr_auc: float
    at_threshold: BinaryMetrics
    recall_at_far: list[RecallAtFalseAlarmRate]
    separability: Separability
    capacity: CapacityDiagnosis
    per_kind: dict[str, BinaryMetrics] = field(default_factory=dict)
    verdicts: dict[str, KindVerdict] = field(default_factory=dict)
    """The separability and capacity rules per kind (every anomalous reading as one kind
    when no kinds are given)."""
    operation_false_alarm_rate: float = math.nan
    """Share flagged of the readings of normal operation alone (the normal file), NaN when
    not told which they are. The false-alarm rate at the threshold also counts the normal
    readings of the labelled file, among them those just after a fault that a model's
    window and smoothing still carry it into."""

    @property
    def verdict_summary(self) -> str:
        return verdict_summary(self.verdicts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "detector": self.detector,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "n_normal": self.n_normal,
            "n_anomalous": self.n_anomalous,
            "roc_auc": self.roc_auc,
            "pr_auc": self.pr_auc,
            "at_threshold": self.at_threshold.to_dict(),
            "recall_at_false_alarm_rate": [asdict(point) for point in self.recall_at_far],
            "separability_log_scores": asdict(self.separability),
            "capacity": asdict(self.capacity),
            "per_kind": {kind: counts.to_dict() for kind, counts in self.per_kind.items()},
            "verdicts": {kind: verdict.to_dict() for kind, verdict in self.verdicts.items()},
            "verdict_summary": self.verdict_summary,
            "operation_false_alarm_rate": self.operation_false_alarm_rate,
        }


def evaluate_detector(
    detector: str,
    scores: np.ndarray,
    labels: np.ndarray,
    *,
    threshold: float,
    threshold_source: str,
    kinds: Sequence[str] | np.ndarray | None = None,
    false_alarm_rates: Sequence[float] = DEFAULT_FALSE_ALARM_RATES,
    advice: Advice | None = None,
    operation: np.ndarray | None = None,
) -> DetectorEvaluation:
    """``kinds`` names each anomalous reading's kind (normal readings' entries are ignored);
    each kind is scored against all normal readings, so its false-alarm rate is shared.
    ``advice`` is what to do when the score does not separate, worded for the model being
    judged (default: a reconstruction network's over one reading for ``"autoencoder"``, none
    for other detectors: the PCA baselines are references, with nothing to train).
    ``operation`` marks the readings of normal operation alone (a run without faults)."""
    if advice is None:
        advice = Advice() if detector == "autoencoder" else NO_ADVICE
    s, y = _as_scores_and_labels(scores, labels)
    flags = s > threshold
    auc = roc_auc(s, y)
    per_kind: dict[str, BinaryMetrics] = {}
    verdicts: dict[str, KindVerdict] = {}
    kind_array = np.full(y.size, "anomalous", dtype=object)
    if kinds is not None:
        kind_array = np.asarray(kinds, dtype=object).ravel()
        if kind_array.shape != y.shape:
            raise ValueError(f"{kind_array.size} kinds but {y.size} labels")
    for kind in sorted({str(k) for k in kind_array[y]}):
        rows = ~y | (kind_array == kind)
        if kinds is not None:
            per_kind[kind] = BinaryMetrics.from_flags(flags[rows], y[rows])
        mine = y & (kind_array == kind)
        verdicts[kind] = kind_verdict(
            kind,
            s[~y],
            s[mine],
            threshold=threshold,
            auc=roc_auc(s[rows], y[rows]),
            advice=advice,
        )
    known = _operation_normals(y, operation)
    return DetectorEvaluation(
        detector=detector,
        threshold=float(threshold),
        threshold_source=threshold_source,
        n_normal=int(np.sum(~y)),
        n_anomalous=int(np.sum(y)),
        roc_auc=auc,
        pr_auc=average_precision(s, y),
        at_threshold=BinaryMetrics.from_flags(flags, y),
        # On normal operation alone where known: a labelled run's normal readings just after
        # a fault score high for any model with a window or smoothing, and a cut-off set
        # among them says less of the model than of how long it remembers.
        recall_at_far=[
            recall_at_false_alarm_rate(s, y, far, normals=known) for far in false_alarm_rates
        ],
        separability=separability(s[~y], s[y]),
        capacity=capacity_diagnosis(s[~y], s[y], auc, advice=advice.capacity),
        per_kind=per_kind,
        verdicts=verdicts,
        operation_false_alarm_rate=math.nan if known is None else float(np.mean(flags[known])),
    )


def _operation_normals(labels: np.ndarray, operation: np.ndarray | None) -> np.ndarray | None:
    """The readings of normal operation alone, checked against the labels; None when not
    known or none are."""
    if operation is None:
        return None
    mask = np.asarray(operation, dtype=bool).ravel()
    if mask.shape != labels.shape:
        raise ValueError(f"{mask.size} operation flags but {labels.size} labels")
    if (mask & labels).any():
        raise ValueError("readings of normal operation cannot be labelled anomalous")
    return mask if mask.any() else None
