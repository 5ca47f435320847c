"""The operating point a model ships with: how its scores are smoothed and the threshold on
the smoothed scores.

The service smooths each stream's scores before it compares them with the threshold, so a
threshold set on raw calibration scores promises a false-alarm rate the service does not
deliver. Here the calibration scores are smoothed exactly as the service will smooth them
(with the service's own smoothers) and the threshold is their quantile.

>>> parse_smoothing("ewma:0.3").label()
'ewma:0.3'
>>> smooth(np.array([0.0, 3.0, 0.0, 0.0]), parse_smoothing("median:3")).tolist()
[0.0, 1.5, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from models.events import AlertRule
from models.threshold import ThresholdEstimate, estimate_threshold
from service.scoring.manifest import ScoreSmoothing
from service.scoring.smoothing import make_smoother

NONE = ScoreSmoothing(method="none")
CANDIDATES = ("none", "median:3", "median:5", "mean:3", "ewma:0.5", "ewma:0.3", "ewma:0.1")
"""Smoothings selection weighs, from none to a long memory (an EWMA of 0.1 averages about
the last 19 scores)."""


def parse_smoothing(spec: str) -> ScoreSmoothing:
    """``none``, ``mean:N``, ``median:N`` or ``ewma:ALPHA``."""
    method, _, value = spec.strip().partition(":")
    try:
        if method == "none" and not value:
            return NONE
        if method in ("mean", "median"):
            return ScoreSmoothing(method=method, window=int(value))
        if method == "ewma":
            return ScoreSmoothing(method="ewma", alpha=float(value))
    except ValueError as exc:  # int("x") or the schema's bounds
        raise ValueError(f"smoothing {spec!r}: {exc}") from exc
    raise ValueError(
        f"smoothing {spec!r} must be none, mean:N, median:N or ewma:ALPHA (0 < ALPHA <= 1)"
    )


def smooth(
    scores: np.ndarray, smoothing: ScoreSmoothing, *, threshold: float | None = None
) -> np.ndarray:
    """``scores`` of one stream in time order, smoothed as the service smooths them; a
    smoothing with a cap needs the ``threshold`` its cap is a multiple of."""
    values = np.asarray(scores, dtype=np.float64)
    if smoothing.cap is not None:
        if threshold is None:
            raise ValueError("a capped smoothing needs the threshold its cap is a multiple of")
        values = np.minimum(values, smoothing.cap * threshold)
        smoothing = smoothing.model_copy(update={"cap": None})
    if smoothing.method == "none":
        return values
    return make_smoother(smoothing).update_many(values)


def score_cap(smoothing: ScoreSmoothing, typical: float, threshold: float) -> float | None:
    """The highest score one reading may feed ``smoothing`` (in the scores' units) so that,
    on top of the ``typical`` smoothed score, it cannot raise an alert by itself under the
    service's default k-of-n rule; None where no cap is needed (a median ignores one reading,
    no smoothing holds nothing up).

    An EWMA of weight a lifts ``typical`` by a (c - typical) at the capped reading, and the
    lift decays by 1 - a per reading after it: at c = typical + (t - typical) / (a (1 - a)^(k-2))
    it stays at or above t for k - 1 readings, one short of an alert. A mean of N holds the
    reading for N scores, so its cap keeps the mean at t: c = typical + N (t - typical).

    >>> score_cap(ScoreSmoothing(method="ewma", alpha=0.5), 1.0, 2.0)
    5.0
    """
    k = AlertRule().k
    if smoothing.method == "ewma" and smoothing.alpha < 1:
        a = smoothing.alpha
        return typical + (threshold - typical) / (a * (1 - a) ** (k - 2))
    if smoothing.method == "mean" and smoothing.window > 1:
        return typical + smoothing.window * (threshold - typical)
    return None


@dataclass(frozen=True)
class OperatingPoint:
    """A threshold and the smoothing it was set on (with the guard's cap when it has one)."""

    threshold: ThresholdEstimate
    smoothing: ScoreSmoothing

    @property
    def cap(self) -> float | None:
        """The guard's cap in the scores' units, if the smoothing has one."""
        cap = self.smoothing.cap
        return None if cap is None else cap * self.threshold.value

    def smooth(self, scores: np.ndarray) -> np.ndarray:
        """One run's raw scores as this operating point smooths them."""
        return smooth(scores, self.smoothing, threshold=self.threshold.value)


def operating_point(
    parts: Sequence[np.ndarray],
    smoothing: ScoreSmoothing,
    quantile: float,
    *,
    source: str,
    capped: bool = False,
) -> OperatingPoint:
    """The ``quantile`` of the calibration scores (``parts``: runs in time order, each
    smoothed on its own). ``capped``: the guard's cap (:func:`score_cap`, from the median
    smoothed score and that threshold) is applied to the raw scores and the threshold set
    again on what the service will then smooth; the cap is kept as a multiple of it.
    Raises what :func:`~models.threshold.estimate_threshold` raises."""
    smoothed = np.concatenate([smooth(part, smoothing) for part in parts])
    threshold = estimate_threshold(smoothed, quantile, source=source)
    cap = score_cap(smoothing, float(np.median(smoothed)), threshold.value) if capped else None
    if cap is None:
        return OperatingPoint(threshold, smoothing)
    limited = np.concatenate([smooth(np.minimum(part, cap), smoothing) for part in parts])
    threshold = estimate_threshold(limited, quantile, source=source)
    return OperatingPoint(threshold, smoothing.model_copy(update={"cap": cap / threshold.value}))
