"""Does a score separate anomalies from normal readings, per kind, and what to do if not.

Two rules, applied to every kind of anomaly (or labelled file) on its own, since pooling
hides the kinds a model misses:

- separability: Welch's t-test p < 0.01 *and* Cohen's d > 2 on log scores, both at once (with
  thousands of readings any shift is "significant"; the effect size says whether it is
  large enough to put a threshold between them);
- capacity: the kind's median score at least 1.5x the normal median and an ROC-AUC of at
  least 0.6; below that, the model scores those anomalies like normal readings.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

SEPARABILITY_MAX_P = 0.01
SEPARABILITY_MIN_EFFECT = 2.0
# The capacity rule: anomalies whose median error is under 1.5x the normals' median, or an
# AUC under 0.6, mean the model reconstructs what it should not (the "overpowered
# autoencoder" trap) or cannot tell the two apart at all.
CAPACITY_MIN_MEDIAN_RATIO = 1.5
CAPACITY_MIN_AUC = 0.6
_LOG_FLOOR = 1e-12


@dataclass(frozen=True)
class Separability:
    """Welch's t-test and Cohen's d on log scores: errors are squared and heavy-tailed, so on
    the raw scale a handful of huge anomalies would dominate both the mean and the variance."""

    welch_t: float
    p_value: float
    cohens_d: float
    n_normal: int
    n_anomalous: int


def separability(normal_scores: np.ndarray, anomalous_scores: np.ndarray) -> Separability:
    normal = np.log(np.maximum(np.asarray(normal_scores, dtype=np.float64), _LOG_FLOOR))
    anomalous = np.log(np.maximum(np.asarray(anomalous_scores, dtype=np.float64), _LOG_FLOOR))
    if normal.size < 2 or anomalous.size < 2:
        raise ValueError("the t-test needs at least two normal and two anomalous readings")
    with warnings.catch_warnings():
        # Identical scores in a group (a stuck kind, a handful of readings): scipy warns of
        # precision loss and returns what the data allow (an infinite t, or NaN).
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ttest_ind(anomalous, normal, equal_var=False)
    pooled = math.sqrt(
        ((normal.size - 1) * normal.var(ddof=1) + (anomalous.size - 1) * anomalous.var(ddof=1))
        / (normal.size + anomalous.size - 2)
    )
    difference = float(anomalous.mean() - normal.mean())
    cohens_d = difference / pooled if pooled > 0 else math.copysign(math.inf, difference)
    return Separability(
        welch_t=float(result.statistic),
        p_value=float(result.pvalue),
        cohens_d=cohens_d,
        n_normal=int(normal.size),
        n_anomalous=int(anomalous.size),
    )


@dataclass(frozen=True)
class CapacityDiagnosis:
    """Does the model reconstruct anomalies about as well as normals? If so, a larger model
    would not help: it needs less capacity (smaller latent, more dropout or noise)."""

    median_normal: float
    median_anomalous: float
    median_ratio: float
    auc: float
    anomalies_below_normal_median: float
    ok: bool
    message: str


RECONSTRUCTION_ADVICE = (
    "The model may be overpowered (it learned to copy its input, faults included): reduce "
    "its capacity (train --latent, --hidden) or raise the noise it is trained to remove "
    "(train --noise-std)."
)


def capacity_diagnosis(
    normal_scores: np.ndarray,
    anomalous_scores: np.ndarray,
    auc: float,
    *,
    advice: str = RECONSTRUCTION_ADVICE,
) -> CapacityDiagnosis:
    normal = np.asarray(normal_scores, dtype=np.float64)
    anomalous = np.asarray(anomalous_scores, dtype=np.float64)
    median_normal = float(np.median(normal))
    median_anomalous = float(np.median(anomalous))
    ratio = median_anomalous / median_normal if median_normal > 0 else math.inf
    below = float(np.mean(anomalous <= median_normal))
    problems = []
    if ratio < CAPACITY_MIN_MEDIAN_RATIO:
        problems.append(
            f"the median anomalous error is only {ratio:.2f}x the median normal error "
            f"(rule: >= {CAPACITY_MIN_MEDIAN_RATIO})"
        )
    if auc < CAPACITY_MIN_AUC:
        problems.append(f"ROC-AUC is {auc:.3f} (rule: >= {CAPACITY_MIN_AUC})")
    if problems:
        message = (
            "WARNING: the typical anomalous reading scores about as low as normal ones: "
            + "; ".join(problems)
            + f". {below:.0%} of anomalous readings score below the normal median. {advice}"
        ).rstrip()
    else:
        message = (
            f"ok: anomalies score {ratio:.1f}x higher than normals at the median "
            f"and ROC-AUC is {auc:.3f}."
        )
    return CapacityDiagnosis(
        median_normal=median_normal,
        median_anomalous=median_anomalous,
        median_ratio=ratio,
        auc=auc,
        anomalies_below_normal_median=below,
        ok=not problems,
        message=message,
    )


WINDOW_ADVICE = (
    "A statistic over a window of readings (train --window, or smoothing before the "
    "threshold) raises the effect size of faults that are small reading by reading."
)
INVISIBLE_ADVICE = (
    "If the PCA baseline does not separate it either, single readings barely show this kind: "
    "only a statistic over a window of time may (train --window)."
)


@dataclass(frozen=True)
class Advice:
    """What a verdict tells the user to do, in the words that fit the model it judges (an
    option of another family, or a window it already has, would mislead). The defaults fit
    a reconstruction network over one reading; ``models.evaluate_model`` words the others."""

    capacity: str = RECONSTRUCTION_ADVICE
    """When anomalies score like normal readings."""
    weak: str = WINDOW_ADVICE
    """When a kind scores higher but does not separate by the rule."""
    invisible: str = INVISIBLE_ADVICE
    """After ``capacity``, for a kind not separated."""


NO_ADVICE = Advice(capacity="", weak="", invisible="")
"""For the PCA baseline: a reference beside the model, with nothing to train or change, so
its verdicts give their figures and no advice (what to try is the model's verdicts' to say)."""


@dataclass(frozen=True)
class KindVerdict:
    """Both rules applied to one kind of anomaly against every normal reading."""

    kind: str
    n_readings: int
    recall: float
    """At the operating threshold."""
    auc: float
    separability: Separability
    capacity: CapacityDiagnosis
    verdict: str
    """"ok" (separates), "weak" (scores higher, but not separable by the rule), "not
    separated" (its typical reading scores like normal ones) or "too few" (one reading: the
    rule's test cannot run)."""
    message: str

    @property
    def separates(self) -> bool:
        return self.verdict == "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n_readings": self.n_readings,
            "recall": self.recall,
            "roc_auc": self.auc,
            "separability_log_scores": asdict(self.separability),
            "median_ratio": self.capacity.median_ratio,
            "verdict": self.verdict,
            "message": self.message,
        }


def separates_by_rule(result: Separability) -> bool:
    """Welch p < 0.01 and Cohen's d > 2 (on log scores), both."""
    return result.p_value < SEPARABILITY_MAX_P and result.cohens_d > SEPARABILITY_MIN_EFFECT


def kind_verdict(
    kind: str,
    normal_scores: np.ndarray,
    kind_scores: np.ndarray,
    *,
    threshold: float,
    auc: float,
    advice: Advice | None = None,
) -> KindVerdict:
    """The verdict on one kind: ok, weak or not separated, each with what to do."""
    advice = advice or Advice()
    kind_scores = np.asarray(kind_scores, dtype=np.float64)
    normal_scores = np.asarray(normal_scores, dtype=np.float64)
    recall = float(np.mean(kind_scores > threshold)) if kind_scores.size else math.nan
    capacity = capacity_diagnosis(normal_scores, kind_scores, auc, advice=advice.capacity)
    if kind_scores.size < 2:
        nan = math.nan
        result = Separability(nan, nan, nan, int(normal_scores.size), int(kind_scores.size))
        message = (
            f"TOO FEW READINGS: {kind_scores.size} of this kind, and the rule's t-test needs "
            f"two; recall {recall:.1%} at the threshold says nothing about the next ones. "
            "Evaluate on more of them."
        )
        return KindVerdict(
            kind, int(kind_scores.size), recall, auc, result, capacity, "too few", message
        )
    result = separability(normal_scores, kind_scores)
    figures = (
        f"Cohen's d {result.cohens_d:.2f}, Welch p {result.p_value:.2g}, median "
        f"{capacity.median_ratio:.2f}x normal, ROC-AUC {auc:.3f}, recall {recall:.1%} at "
        "the threshold"
    )
    if not capacity.ok:
        verdict = "not separated"
        todo = " ".join(part for part in (advice.capacity, advice.invisible) if part)
        message = (
            f"NOT SEPARATED: its typical reading scores close to normal ones ({figures}); "
            + (
                f"what crosses the threshold is the {recall:.1%} that stand out. "
                if recall > 0
                else "none crosses the threshold. "
            )
            + todo
        ).rstrip()
    elif separates_by_rule(result):
        verdict = "ok"
        message = (
            f"ok: separates (rule: p < {SEPARABILITY_MAX_P:g} and d > "
            f"{SEPARABILITY_MIN_EFFECT:g}; {figures})."
        )
    else:
        verdict = "weak"
        message = (
            f"WEAK: scores higher than normal readings but not separable by the rule (p < "
            f"{SEPARABILITY_MAX_P:g} and d > {SEPARABILITY_MIN_EFFECT:g}; {figures}): expect "
            f"late or partial detection. {advice.weak}"
        ).rstrip()
    return KindVerdict(kind, int(kind_scores.size), recall, auc, result, capacity, verdict, message)


def verdict_summary(verdicts: dict[str, KindVerdict]) -> str:
    """One line over every kind: how many separate, and which do not."""
    if not verdicts:
        return ""
    ok = [k for k, v in verdicts.items() if v.verdict == "ok"]
    weak = [k for k, v in verdicts.items() if v.verdict == "weak"]
    missed = [k for k, v in verdicts.items() if v.verdict == "not separated"]
    few = [k for k, v in verdicts.items() if v.verdict == "too few"]
    parts = [f"{len(ok)} of {len(verdicts)} kinds separate by the rule"]
    if weak:
        parts.append(f"weak: {', '.join(weak)}")
    if missed:
        parts.append(f"not separated: {', '.join(missed)}")
    if few:
        parts.append(f"too few readings to test: {', '.join(few)}")
    return "; ".join(parts) + "."
