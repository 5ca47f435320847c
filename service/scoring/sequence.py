"""Scoring a self-contained sequence of one stream's readings, outside any stream state.

Feedback that carries its readings is scored here, the same way a scoring request is:
the stream windowing of :mod:`service.scoring.streams`, the model call, the refusals of
values beyond the model's range and of errors that overflow, and the decision rule of
:mod:`service.scoring.decision`. Nothing is remembered:
no stream state, no recent readings, no metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from service.scoring.decision import Decisions, decide
from service.scoring.manifest import ScoreSmoothing
from service.scoring.pipeline import reject_out_of_reach, reject_overflow
from service.scoring.registry import LoadedModel
from service.scoring.smoothing import make_smoother
from service.scoring.streams import input_windows


@dataclass(frozen=True, slots=True)
class ScoredSequence:
    """Readings ``first..`` scored (the ``first`` = window - 1 before them give context)."""

    first: int
    squared: np.ndarray  # float32 (s, n_sensors): per-sensor squared errors
    decisions: Decisions
    smoothed: np.ndarray  # float64 (s,): the scores (over the threshold) as the stream smooths


def score_sequence(
    model: LoadedModel,
    values: np.ndarray,
    threshold: float,
    top_k: int,
    smoothing: ScoreSmoothing,
) -> ScoredSequence:
    """``values``: float32 ``(m, n_sensors)``, m >= the model's window. Event loop only (the
    engine is not shared across threads). A value beyond the model's range, or a reading
    whose error overflows, is refused (:class:`~service.errors.InvalidReading`) as the
    scoring endpoint refuses it. A model
    that declares its smoothing flags the smoothed score above 1 (``smoothing``, the one
    its streams get, the sequence smoothed as a new stream's scores are: from the declared
    start, else from its first score), as the pipeline does."""
    reject_out_of_reach(values, model)
    history = np.empty((0, values.shape[1]), dtype=np.float32)
    inputs = input_windows(history, values, model.window, model.glitch_limits)
    first = inputs.warming
    squared, _ = model.engine.score(np.ascontiguousarray(inputs.windows))
    if not np.isfinite(squared).all():
        reject_overflow(squared, model, first)
    decisions = decide(squared, threshold, top_k)
    smoothed = decisions.scores
    if model.manifest.smoothing is not None:
        smoothed = make_smoother(smoothing, threshold).update_many(decisions.scores)
        decisions = replace(decisions, anomalies=smoothed > 1.0)
    return ScoredSequence(first=first, squared=squared, decisions=decisions, smoothed=smoothed)
