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

import numpy as np

from service.scoring.manifest import ScoreSmoothing
from service.scoring.smoothing import make_smoother

NONE = ScoreSmoothing(method="none")
CANDIDATES = ("none", "median:3", "median:5", "mean:3", "ewma:0.5", "ewma:0.3", "ewma:0.1")
"""Smoothings selection weighs, from none to a long memory (an EWMA of 0.1 averages about
the last 19 scores)."""


def parse_smoothing(spec: str) -> ScoreSmoothing:
    """``none``, ``mean:N``, ``median:N`` or ``ewma:ALPHA``; anything else, or out of the
    schema's bounds, is one line saying what is allowed.

    >>> parse_smoothing("ewma:2")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: smoothing 'ewma:2' must be none, mean:N, ... or ewma:ALPHA (0 < ALPHA <= 1)
    """
    method, _, value = spec.strip().partition(":")
    try:
        if method == "none" and not value:
            return NONE
        if method in ("mean", "median"):
            return ScoreSmoothing(method=method, window=int(value))
        if method == "ewma":
            return ScoreSmoothing(method="ewma", alpha=float(value))
    except ValueError as exc:  # int("x"), or the schema's bounds (pydantic's many lines)
        raise ValueError(_SMOOTHING_FORMS.format(spec=spec)) from exc
    raise ValueError(_SMOOTHING_FORMS.format(spec=spec))


_SMOOTHING_FORMS = (
    "smoothing {spec!r} must be none, mean:N, median:N (N >= 1) or ewma:ALPHA (0 < ALPHA <= 1)"
)


def declared(spec: str, calibration_scores: np.ndarray) -> ScoreSmoothing:
    """The smoothing ``spec`` as a model declares it: started where the raw calibration
    scores (one per reading) sit, their mean for an EWMA or a mean, their median for a
    median, so a new stream is smoothed from its first score as the threshold assumes
    (service/scoring/smoothing.py's make_smoother says why).

    >>> declared("ewma:0.5", np.array([1.0, 2.0, 6.0])).start
    3.0
    >>> smooth(np.array([3.0, 3.0]), declared("ewma:0.5", np.array([1.0]))).tolist()
    [2.0, 2.5]
    """
    smoothing = parse_smoothing(spec)
    if smoothing.method == "none":
        return smoothing
    scores = np.asarray(calibration_scores, dtype=np.float64)
    if not scores.size:
        raise ValueError("a declared smoothing needs calibration scores to start from")
    level = np.median(scores) if smoothing.method == "median" else np.mean(scores)
    return ScoreSmoothing.model_validate({**smoothing.model_dump(), "start": float(level)})


def smooth(scores: np.ndarray, smoothing: ScoreSmoothing) -> np.ndarray:
    """``scores`` of one stream in time order, smoothed as the service smooths them (a
    declared ``start`` in the scores' own units)."""
    values = np.asarray(scores, dtype=np.float64)
    if smoothing.method == "none":
        return values
    return make_smoother(smoothing).update_many(values)
