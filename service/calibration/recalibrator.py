"""Threshold recalibration from confirmed normals: the pure candidate rule and the
background task that runs it.

The candidate is a quantile (or median + k·MAD) of the reconstruction errors operators
confirmed as normal in a rolling window. Confirmed anomalies never enter the sample, and
two guards keep a burst of wrong labels or an ongoing fault from dragging the threshold:
a minimum sample count, and a cap on the relative change per step above which the
candidate waits for an admin's approval instead of being applied.

A quantile candidate moves the threshold only when normal operation is seen to exceed it
more or less often than the ``1 - quantile`` it stands for (an
:class:`~service.calibration.evidence.Exceedance`): measured on readings drawn as normal
operation runs (labelled time ranges or carried readings, else the retained scored
readings), at their effective size, and only the way that shows. Labels picked from the
review queue cannot measure it (alerts are over-represented among them by construction). An
upper quantile of a few dozen labels, or of a few thousand consecutive ones, is mostly
sampling noise; applied as it came, it would move a correct threshold by tens of percent at
every run (docs/recalibration.md has the figures).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from service.calibration.anchors import Anchor
from service.calibration.evidence import Exceedance, needed_without_exceedance

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


def insufficient(
    current: float, message: str, statistics: dict[str, float | int | str], n_samples: int = 0
) -> Candidate:
    """A step that proposes nothing, and why."""
    return Candidate(
        outcome="insufficient",
        current=current,
        value=None,
        relative_change=None,
        n_samples=n_samples,
        message=message,
        statistics=statistics,
    )


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


def candidate_threshold(
    errors: Sequence[float] | np.ndarray,
    current: float,
    policy: RecalibrationPolicy,
    *,
    weights: np.ndarray | None = None,
    exceedance: Exceedance | None,
    anchor: Anchor | None = None,
) -> Candidate:
    """The threshold the confirmed-normal ``errors`` support and whether it may be applied.

    ``weights`` (from :func:`review_weights`) correct for how the labels were sampled;
    without them every label counts once. ``exceedance``: how often normal operation was
    seen above ``current`` (quantile method: the candidate is weighed only when it rules out
    ``1 - quantile``; None, nothing measured it, and the threshold stays).

    >>> from service.calibration.evidence import sample_exceedance
    >>> policy = RecalibrationPolicy(quantile=0.5, min_samples=3)
    >>> def seen(errors): return sample_exceedance(errors, 1.0)
    >>> above = np.linspace(1.0, 1.2, 41)
    >>> candidate_threshold(above, 1.0, policy, exceedance=seen(above)).outcome
    'applied'
    >>> candidate_threshold([2.0] * 40, 1.0, policy, exceedance=seen([2.0] * 40)).outcome
    'pending'
    >>> few = [0.9, 1.1, 1.2]  # 2 of 3 above: can't tell
    >>> candidate_threshold(few, 1.0, policy, exceedance=seen(few)).outcome
    'unchanged'
    >>> candidate_threshold([1.0], 1.0, policy, exceedance=seen([1.0])).outcome
    'insufficient'
    """
    if not current > 0:
        raise ValueError(f"current threshold must be positive, got {current}")
    sample = np.asarray(errors, dtype=np.float64)
    finite = np.isfinite(sample)
    sample = sample[finite]
    weight = np.ones(sample.size) if weights is None else np.asarray(weights)[finite]
    n = int(sample.size)
    if n < policy.min_samples:
        return insufficient(
            current,
            f"{n} confirmed normals in the window, {policy.min_samples} needed",
            {"n_samples": n, "min_samples": policy.min_samples},
            n,
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
        return insufficient(
            current, f"confirmed normals give a non-positive threshold ({value:.6g})", statistics, n
        )
    change = value / current - 1.0
    statistics.update({"candidate": value, "current": current, "relative_change": change})
    stays = (
        _why_it_stays(exceedance, current, value, policy, statistics)
        if policy.method == "quantile"
        else None
    )
    if stays is not None:
        outcome: CandidateOutcome = "unchanged"
        message = stays
    elif abs(change) < policy.min_relative_change:
        outcome = "unchanged"
        message = f"candidate {value:.6g} is within {policy.min_relative_change:.0%} of current"
    elif abs(change) <= policy.max_relative_change and (
        anchor is None or not _strays(value, current, anchor, policy)
    ):
        outcome = "applied"
        message = (
            f"threshold {current:.6g} → {value:.6g} ({change:+.1%}) from {n} confirmed normals"
        )
    elif abs(change) <= policy.max_relative_change and anchor is not None:
        outcome = "pending"
        message = (
            f"candidate {value:.6g} moves the threshold {change:+.1%}, but "
            f"{value / anchor.value - 1.0:+.1%} from {anchor.value:.6g} (version "
            f"{anchor.version}, the last one a person chose), more than the "
            f"{policy.max_relative_change:.0%} cap: held for an admin's approval"
        )
    else:
        outcome = "pending"
        message = (
            f"candidate {value:.6g} moves the threshold {change:+.1%}, more than the "
            f"{policy.max_relative_change:.0%} cap: held for an admin's approval"
        )
    if anchor is not None:
        statistics.update(anchor.as_statistics())
    return Candidate(
        outcome=outcome,
        current=current,
        value=value,
        relative_change=change,
        n_samples=n,
        message=message,
        statistics=statistics,
    )


def _strays(value: float, current: float, anchor: Anchor, policy: RecalibrationPolicy) -> bool:
    """The candidate lies further than the cap from the threshold a person last chose, and
    further than the threshold in force (a step back towards it is never held)."""
    away = abs(value / anchor.value - 1.0)
    return away > policy.max_relative_change and away > abs(current / anchor.value - 1.0)


def _why_it_stays(
    exceedance: Exceedance | None,
    current: float,
    value: float,
    policy: RecalibrationPolicy,
    statistics: dict[str, float | int | str],
) -> str | None:
    """Why the threshold stays when nothing shows it wrong (``statistics`` get what was
    measured), else None."""
    target = 1.0 - policy.quantile
    level = f"{policy.confidence:g}"
    needed = needed_without_exceedance(policy.quantile, policy.confidence)
    if exceedance is None:
        message = (
            "nothing measured how often normal operation exceeds the threshold: every label "
            "was picked from the review queue (alerts are over-represented there) or kept out "
            "by the learning freeze, and no scored reading is retained; label a time range of "
            "normal operation, or send normal readings with the label, for the threshold to "
            "move"
        )
    else:
        low, high = exceedance.interval(policy.confidence)
        statistics.update(
            {
                "exceedance_from": exceedance.source,
                "n_above_current": exceedance.n_above,
                "n_measured": exceedance.n,
                "n_effective": exceedance.effective,
                "share_above_current": exceedance.share,
                "share_interval_low": low,
                "share_interval_high": high,
            }
        )
        frozen, kept_out, worth = exceedance.with_frozen, "", ""
        if frozen is not None:
            n_frozen, above = frozen.n - exceedance.n, frozen.n_above - exceedance.n_above
            statistics.update(
                {
                    "n_frozen": n_frozen,
                    "n_frozen_above_current": above,
                    "share_above_current_with_frozen": frozen.share,
                    "n_effective_with_frozen": frozen.effective,
                }
            )
            kept_out = (
                f" (and {above} of the {n_frozen} the learning freeze kept out, taken both as "
                "normal operation and as a fault)"
            )
            worth = f", {_about(frozen.effective)} with those kept out"
        seen = (
            f"{exceedance.n_above} of {exceedance.n} {exceedance.source} ({exceedance.share:.2%}) "
            f"lie above the threshold {current:.6g}{kept_out}; they are worth about "
            f"{_about(exceedance.effective)} independent readings{worth} (consecutive readings "
            f"share the model's memory), so the rate is {low:.2%}-{high:.2%} at {level} "
            "confidence"
        )
        if low <= target <= high:
            message = f"{seen}, which holds the {target:.2%} the threshold stands for: it stays"
        elif value == current or (low > target) == (value > current):
            return None  # moves the way the measure shows (or not at all)
        else:
            shown, would = ("too low", "lower") if low > target else ("too high", "raise")
            message = (
                f"{seen}: the threshold is {shown}, but the confirmed normals' candidate "
                f"would {would} it: it stays"
            )
    return message + (
        f" (the confirmed normals' {policy.quantile:g} quantile is {value:.6g}; with none "
        f"above it, readings worth {needed:.0f} independent ones would show it too high)"
    )


def _about(count: float) -> str:
    """An effective count as a person reads it: whole from 10 up, two figures below.

    >>> _about(2187.4), _about(3.36)
    ('2,187', '3.4')
    """
    return f"{count:,.0f}" if count >= 10 else f"{count:.2g}"


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
