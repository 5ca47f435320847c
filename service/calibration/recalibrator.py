"""Threshold recalibration from confirmed normals: the pure candidate rule and the
background task that runs it.

The candidate is a quantile (or median + k·MAD) of the reconstruction errors operators
confirmed as normal in a rolling window. Confirmed anomalies never enter the sample, and
two guards keep a burst of wrong labels or an ongoing fault from dragging the threshold:
a minimum sample count, and a cap on the relative change per step above which the
candidate waits for an admin's approval instead of being applied.

A quantile candidate moves the threshold only when the confirmed normals show the threshold
is wrong: when the share of them above it is, at their effective size, not consistent with
the ``1 - quantile`` the threshold stands for (:func:`exceedance_evidence`). An upper
quantile of a few dozen labels, or of a few thousand consecutive ones, is mostly sampling
noise; applied as it came, it would move a correct threshold by tens of percent at every
run (docs/recalibration.md has the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.calibration.evidence import clopper_pearson, effective_size, span_lengths

logger = logging.getLogger(__name__)

RecalibrationMethod = Literal["quantile", "robust"]
CandidateOutcome = Literal["applied", "pending", "unchanged", "insufficient"]

# Scales the MAD to the standard deviation of a normal distribution.
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, slots=True)
class RecalibrationPolicy:
    """How a candidate is computed and when it may be applied without an admin."""

    method: RecalibrationMethod = "quantile"
    quantile: float = 0.99
    mad_k: float = 3.0
    min_samples: int = 50
    max_relative_change: float = 0.2
    min_relative_change: float = 0.01
    confidence: float = 0.99
    """Of the interval on the share of confirmed normals above the threshold (quantile
    method): a candidate is weighed only when that interval leaves out ``1 - quantile``."""

    def __post_init__(self) -> None:
        if not 0 < self.quantile < 1:
            raise ValueError(f"quantile must be in (0, 1), got {self.quantile}")
        if self.mad_k <= 0:
            raise ValueError(f"mad_k must be positive, got {self.mad_k}")
        if self.min_samples < 2:
            raise ValueError(f"min_samples must be at least 2, got {self.min_samples}")
        if not 0 < self.max_relative_change:
            raise ValueError("max_relative_change must be positive")
        if not 0 <= self.min_relative_change < self.max_relative_change:
            raise ValueError("min_relative_change must be in [0, max_relative_change)")
        if not 0 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")


@dataclass(frozen=True, slots=True)
class Candidate:
    """What a recalibration step concluded; ``statistics`` is stored with the version."""

    outcome: CandidateOutcome
    current: float
    value: float | None
    relative_change: float | None
    n_samples: int
    message: str
    statistics: dict[str, float | int | str]


def review_weights(flagged: Sequence[bool] | np.ndarray, flagged_share: float) -> np.ndarray:
    """Per-label weights (mean 1) that give the readings flagged when scored
    ``flagged_share`` of the sample's mass, whatever share of the labels they are.

    Operators review every alert but only an audit sample of the rest, so confirmed false
    alarms are over-represented among confirmed normals; unweighted, they drag the upper
    quantile up with no real shift. With both kinds present, flagged labels share
    ``flagged_share`` and unflagged ones the rest, each kind equally; otherwise the
    weights are equal.

    >>> review_weights([True, False, False, False], 0.5).tolist()
    [2.0, 0.6666666666666666, 0.6666666666666666, 0.6666666666666666]
    """
    marks = np.asarray(flagged, dtype=bool)
    n_flagged = int(marks.sum())
    n = marks.size
    if n_flagged in (0, n):
        return np.ones(n)
    share = min(max(flagged_share, 1e-6), 1.0 - 1e-6)
    return np.where(marks, share / n_flagged, (1.0 - share) / (n - n_flagged)) * n


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Linear interpolation between weighted order statistics: equal weights give exactly
    ``np.quantile(values, q)``.

    >>> weighted_quantile(np.array([1.0, 2.0, 3.0]), np.ones(3), 0.25)
    1.5
    """
    order = np.argsort(values, kind="stable")
    ordered, w = values[order], weights[order]
    below = np.cumsum(w) - w  # mass strictly before each point
    positions = below / below[-1]
    return float(np.interp(q, positions, ordered))


@dataclass(frozen=True, slots=True)
class Exceedance:
    """How confirmed normals stand against the threshold in force."""

    n_above: int
    share: float
    """Of the sample's weight above the threshold."""
    effective: float
    """Independent readings the sample is worth (its spans over the memory, its weights)."""
    interval: tuple[float, float]
    """On the rate at which normal readings exceed the threshold."""
    target: float
    """``1 - quantile``: the rate the threshold stands for."""

    @property
    def consistent(self) -> bool:
        return self.interval[0] <= self.target <= self.interval[1]


def exceedance_evidence(
    sample: np.ndarray,
    weight: np.ndarray,
    current: float,
    policy: RecalibrationPolicy,
    effective_samples: float,
) -> Exceedance:
    """The share of ``sample`` above ``current`` and its interval, counted at
    ``effective_samples`` shrunk by the weights' design effect (Kish's effective size): an
    interval that holds ``1 - quantile`` means the labels cannot tell the threshold wrong.

    >>> e = exceedance_evidence(np.arange(100.0), np.ones(100), 97.5, RecalibrationPolicy(), 100)
    >>> e.n_above, e.share, e.consistent
    (2, 0.02, True)
    """
    above = sample > current
    share = float(weight[above].sum() / weight.sum())
    kish = float(weight.sum() ** 2 / (weight**2).sum())
    effective = effective_samples * kish / sample.size
    return Exceedance(
        n_above=int(above.sum()),
        share=share,
        effective=effective,
        interval=clopper_pearson(share * effective, effective, policy.confidence),
        target=1.0 - policy.quantile,
    )


def candidate_threshold(
    errors: Sequence[float] | np.ndarray,
    current: float,
    policy: RecalibrationPolicy,
    *,
    weights: np.ndarray | None = None,
    spans: Sequence[str] | None = None,
    memory: float = 1.0,
) -> Candidate:
    """The threshold the confirmed-normal ``errors`` support and whether it may be applied.

    ``weights`` (from :func:`review_weights`) correct for how the labels were sampled;
    without them every label counts once. ``spans`` (one key per label, the labels one
    request gave one stream sharing one) and ``memory`` (normal operation's, in readings)
    say how many independent readings the sample is worth; without spans each label is its
    own.

    >>> policy = RecalibrationPolicy(quantile=0.5, min_samples=3)
    >>> candidate_threshold(np.linspace(1.0, 1.2, 41), 1.0, policy).outcome
    'applied'
    >>> candidate_threshold([2.0] * 40, 1.0, policy).outcome
    'pending'
    >>> candidate_threshold([0.9, 1.1, 1.2], 1.0, policy).outcome  # 2 of 3 above: can't tell
    'unchanged'
    >>> candidate_threshold([1.0], 1.0, policy).outcome
    'insufficient'
    """
    if not current > 0:
        raise ValueError(f"current threshold must be positive, got {current}")
    sample = np.asarray(errors, dtype=np.float64)
    finite = np.isfinite(sample)
    sample = sample[finite]
    weight = np.ones(sample.size) if weights is None else np.asarray(weights)[finite]
    n = int(sample.size)
    keys = [str(i) for i in range(n)] if spans is None else np.asarray(spans)[finite].tolist()
    if n < policy.min_samples:
        return Candidate(
            outcome="insufficient",
            current=current,
            value=None,
            relative_change=None,
            n_samples=n,
            message=f"{n} confirmed normals in the window, {policy.min_samples} needed",
            statistics={"n_samples": n, "min_samples": policy.min_samples},
        )
    statistics: dict[str, float | int | str] = {
        "method": policy.method,
        "n_samples": n,
        "sample_median": float(np.median(sample)),
        "sample_max": float(sample.max()),
    }
    if weights is not None:
        statistics["weighted"] = "flagged share"
    if policy.method == "quantile":
        value = weighted_quantile(sample, weight, policy.quantile)
        statistics["quantile"] = policy.quantile
    else:
        median = weighted_quantile(sample, weight, 0.5)
        mad = weighted_quantile(np.abs(sample - median), weight, 0.5) * MAD_TO_SIGMA
        value = median + policy.mad_k * mad
        statistics.update({"median": median, "mad_sigma": mad, "k": policy.mad_k})
    if not value > 0:
        return Candidate(
            outcome="insufficient",
            current=current,
            value=None,
            relative_change=None,
            n_samples=n,
            message=f"confirmed normals give a non-positive threshold ({value:.6g})",
            statistics=statistics,
        )
    change = value / current - 1.0
    statistics.update({"candidate": value, "current": current, "relative_change": change})
    if policy.method == "quantile":
        evidence = exceedance_evidence(
            sample, weight, current, policy, effective_size(span_lengths(keys), memory)
        )
        statistics.update(
            {
                "n_above_current": evidence.n_above,
                "share_above_current": evidence.share,
                "n_effective": evidence.effective,
                "share_interval_low": evidence.interval[0],
                "share_interval_high": evidence.interval[1],
            }
        )
        if evidence.consistent:
            low, high = evidence.interval
            return Candidate(
                outcome="unchanged",
                current=current,
                value=value,
                relative_change=change,
                n_samples=n,
                message=(
                    f"{evidence.share:.1%} of {n} confirmed normals lie above the threshold "
                    f"{current:.6g}; worth about {evidence.effective:.0f} independent readings "
                    f"(labelled stretches share the model's memory), that is "
                    f"{low:.1%}-{high:.1%} at {policy.confidence:.0%} confidence, which holds "
                    f"the {evidence.target:.1%} the threshold stands for: it stays (their "
                    f"{policy.quantile:g} quantile, {value:.6g}, is within sampling noise)"
                ),
                statistics=statistics,
            )
    if abs(change) < policy.min_relative_change:
        outcome: CandidateOutcome = "unchanged"
        message = f"candidate {value:.6g} is within {policy.min_relative_change:.0%} of current"
    elif abs(change) <= policy.max_relative_change:
        outcome = "applied"
        message = (
            f"threshold {current:.6g} → {value:.6g} ({change:+.1%}) from {n} confirmed normals"
        )
    else:
        outcome = "pending"
        message = (
            f"candidate {value:.6g} moves the threshold {change:+.1%}, more than the "
            f"{policy.max_relative_change:.0%} cap: held for an admin's approval"
        )
    return Candidate(
        outcome=outcome,
        current=current,
        value=value,
        relative_change=change,
        n_samples=n,
        message=message,
        statistics=statistics,
    )


class RecalibrationLoop:
    """The background task's timing: runs ``run_once`` every ``interval_s`` or as soon as
    ``label_trigger`` new labels arrived, whichever comes first.

    ``run_once`` does the work (:meth:`Recalibration.run_scheduled
    <service.calibration.recalibration.Recalibration.run_scheduled>`); this class only
    decides when. Built with the other rooms; the lifespan starts and stops its task.
    """

    def __init__(self, *, interval_s: float, label_trigger: int) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self._interval_s = interval_s
        self._label_trigger = label_trigger
        self._new_labels = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def notify_labels(self, count: int) -> None:
        """Called by the feedback path after labels are stored."""
        self._new_labels += count
        if self._label_trigger > 0 and self._new_labels >= self._label_trigger:
            self._wake.set()

    def start(self, run_once: Callable[[str], Awaitable[None]]) -> None:
        """Start the task (``run_once`` gets the trigger: "interval" or "labels")."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(run_once), name="recalibration")

    async def stop(self) -> None:
        """Cancel and wait: a run in flight is abandoned between transactions, never mid-one,
        because store calls run in threads that finish their transaction regardless."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def _loop(self, run_once: Callable[[str], Awaitable[None]]) -> None:
        while True:
            trigger = "interval"
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self._interval_s)
                trigger = "labels"
            except TimeoutError:
                pass
            self._wake.clear()
            self._new_labels = 0
            try:
                await run_once(trigger)
            except asyncio.CancelledError:
                raise
            except Exception:
                # The run records its own failure; the loop must outlive one bad run.
                logger.exception("recalibration run failed")
