"""What one recalibration run writes to the store: the version it applied or the pending
threshold it holds for approval, then the run record that explains it.

Blocking store work, called by :class:`~service.calibration.keeper.ThresholdKeeper` (the one
writer of thresholds) under its lock, in a worker thread; the keeper publishes afterwards.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from service.calibration.recalibrator import Candidate
from service.calibration.records import NewRun, PendingThreshold, RecalibrationRun
from service.calibration.store import FeedbackStore
from service.scoring.registry import LoadedModel
from service.scoring.thresholds import ThresholdSnapshot


def record_outcome(
    store: FeedbackStore,
    model: LoadedModel,
    current: ThresholdSnapshot,
    candidate: Candidate,
    frame: NewRun,
    *,
    same_within: float,
) -> RecalibrationRun:
    """Persist the version or the pending, then the run that explains it. ``same_within``:
    the relative difference under which a new candidate is the open pending one again."""
    statistics: dict[str, Any] = dict(candidate.statistics)
    statistics["trigger"] = frame.trigger
    version_number: int | None = None
    pending_id: int | None = None
    if candidate.outcome == "applied":
        assert candidate.value is not None
        version = store.append_threshold(
            model.name,
            model.version,
            value=candidate.value,
            baseline=current.baseline,
            source="recalibration",
            reason=candidate.message,
            author="recalibrator",
            statistics=statistics,
        )
        version_number = version.version
    elif candidate.outcome == "pending":
        pending_id = _hold(store, model, current, candidate, statistics, same_within).id
    return store.record_run(
        replace(
            frame,
            outcome=candidate.outcome,
            candidate=candidate.value,
            n_samples=candidate.n_samples,
            message=candidate.message,
            statistics=statistics,
            threshold_version=version_number,
            pending_id=pending_id,
        )
    )


def _hold(
    store: FeedbackStore,
    model: LoadedModel,
    current: ThresholdSnapshot,
    candidate: Candidate,
    statistics: dict[str, Any],
    same_within: float,
) -> PendingThreshold:
    """Keep the open pending when the new candidate is essentially the same one, so an
    admin reviewing it is not raced by the next interval."""
    assert candidate.value is not None and candidate.relative_change is not None
    existing = store.open_pending(model.name)
    if (
        existing is not None
        and existing.current_version == current.version
        and abs(existing.candidate / candidate.value - 1.0) <= same_within
    ):
        return existing
    current_version = store.threshold_version(model.name, current.version)
    return store.create_pending(
        model.name,
        model.version,
        candidate=candidate.value,
        current=current_version,
        relative_change=candidate.relative_change,
        reason=candidate.message,
        statistics=statistics,
    )
