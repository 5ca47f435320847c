"""What a feedback label selects: readings the service scored, by id or by time range, or
readings carried in the request, scored anew (:func:`carried_labels`); and the errors of a
selection that names nothing to label."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from service.calibration.records import LabelValue, NewLabel
from service.errors import InvalidReading, InvalidRequest, ServiceError
from service.scoring.decision import WindowMatch
from service.scoring.registry import LoadedModel
from service.scoring.sequence import score_sequence
from service.scoring.smoothing import scores_remembering_start, stream_smoothing
from service.scoring.thresholds import ThresholdSnapshot
from service.settings import Settings


class UnknownReading(ServiceError):
    status_code = 404
    slug = "unknown-reading"
    title = "Reading not found among recently scored readings"


class AmbiguousReading(ServiceError):
    status_code = 409
    slug = "ambiguous-reading-id"
    title = "Several streams' readings carry this reading id"


class NothingToLabel(ServiceError):
    status_code = 422
    slug = "nothing-to-label"
    title = "The feedback selects no scored reading"


class UnscoredReading(ServiceError):
    """Reading ids of which some warmed their stream up and were never scored: nothing of
    the request is stored, so what it labels never depends on which of its ids happened to
    be scored."""

    status_code = 422
    slug = "unscored-reading"
    title = "The feedback names readings that were not scored"


class EmptyTimeRange(UnknownReading):
    """Like an unknown reading id: the request is well formed, what it names is not there."""

    slug = "empty-time-range"
    title = "No scored reading in the time range"


@dataclass(frozen=True, slots=True)
class ReadingIds:
    """Readings returned by the scoring endpoint; ``stream_id`` picks the stream when
    clients reuse their own reading ids across streams."""

    reading_ids: Sequence[str]
    stream_id: str | None = None


@dataclass(frozen=True, slots=True)
class TimeRange:
    """Every retained scored reading of a stream in [start, end] (Unix seconds)."""

    stream_id: str
    start: float
    end: float
    model: str | None = None


@dataclass(frozen=True, slots=True)
class CarriedReadings:
    """Readings carried in a feedback request: raw values ``(m, n_sensors)`` in manifest order,
    consecutive readings of one stream (a windowed model scores row i from rows i-w+1..i)."""

    model: str | None
    stream_id: str | None
    values: np.ndarray
    timestamps: Sequence[float] | None


Selection = ReadingIds | TimeRange | CarriedReadings


def carried_labels(
    model: LoadedModel,
    snapshot: ThresholdSnapshot,
    carried: CarriedReadings,
    label: LabelValue,
    note: str | None,
    *,
    settings: Settings,
    now: float,
    windows: Callable[[str, str | None, float], WindowMatch | None] | None,
) -> list[NewLabel]:
    """Score carried readings with the model and threshold in force (``snapshot``), and
    label each one that has a full window; ``now`` dates readings carried without times."""
    values = np.ascontiguousarray(carried.values, dtype=np.float32)
    if values.ndim != 2 or values.shape[1] != model.manifest.n_sensors:
        raise InvalidRequest(
            f"readings must have {model.manifest.n_sensors} values each for model "
            f"{model.name!r}, got shape {values.shape}"
        )
    window = model.window
    if len(values) < window:
        raise NothingToLabel(
            f"model {model.name!r} reads windows of {window} readings: send at least "
            f"{window} consecutive readings (the first {window - 1} give context only)"
        )
    served = stream_smoothing(settings, model.manifest.smoothing)
    try:
        scored = score_sequence(model, values, snapshot.value, settings.top_k_sensors, served)
    except InvalidReading as exc:  # its fields named as in this body: readings.values[j]
        exc.errors = [replace(e, field=f"readings.{e.field}") for e in exc.errors]
        raise
    errors = scored.decisions.errors.tolist()
    anomalies = scored.decisions.anomalies.tolist()
    # Scores as the stream's: a model that declares no smoothing scores carried readings
    # unsmoothed (none recorded); a smoothed model's first scores are mostly the new
    # stream's start, recorded only once the smoothing has forgotten it.
    forgetting = (
        len(errors) if model.manifest.smoothing is None else scores_remembering_start(served)
    )
    scores = [
        None if i < forgetting else value
        for i, value in enumerate((scored.smoothed * snapshot.value).tolist())
    ]  # in the error's units
    labels = []
    for i, row in enumerate(scored.squared.tolist()):
        reading_index = scored.first + i
        timestamp = (
            float(carried.timestamps[reading_index]) if carried.timestamps is not None else now
        )
        match = windows(model.name, carried.stream_id, timestamp) if windows is not None else None
        excluded = (
            f"maintenance window {match.excluded_by}"
            if match is not None and match.excluded_by is not None
            else None
        )
        labels.append(
            NewLabel(
                model=model.name,
                model_version=model.version,
                label=label,
                error=errors[i],
                sensor_errors=tuple(row),
                threshold_value=snapshot.value,
                threshold_version=snapshot.version,
                source="readings",
                stream_id=carried.stream_id,
                reading_id=None,
                reading_time=timestamp,
                note=note,
                scored_anomaly=anomalies[i],
                excluded_from_learning=excluded,
                score=scores[i],
            )
        )
    return labels
