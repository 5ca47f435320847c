"""What an operator reviews: the review queue (recent alerts and an audit sample, with the
sensors that drove each), one stream's recent scores (the console's stream view), and who the
presented key is (what the console may offer it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from service.api.feedback import FeedbackPrincipal
from service.api.openapi import problems
from service.api.params import ModelQuery
from service.schemas import as_datetime
from service.scoring.manifest import Manifest
from service.scoring.reading_chunk import RecentReading
from service.scoring.registry import LoadedModel
from service.security import SCOPES, Principal, require_scope
from service.settings import Scope
from service.state import DeskDep, StateDep

router = APIRouter(prefix="/v1/feedback", tags=["feedback"])
whoami_router = APIRouter(prefix="/v1/whoami", tags=["feedback"])
ANY_KEY = require_scope(*SCOPES)


class StreamPoint(BaseModel):
    reading_id: str
    timestamp: datetime | None
    score: float = Field(description="error / the threshold in force when scored.")
    smoothed_score: float | None
    anomaly: bool
    alert: bool
    suppressed_by_window: int | None
    excluded_from_learning_by_window: int | None


class StreamReadings(BaseModel):
    stream_id: str
    model: str
    points: list[StreamPoint] = Field(description="Oldest first; at most `limit`, the newest.")


class WhoAmI(BaseModel):
    name: str
    scopes: list[Scope]


@router.get(
    "/streams/{stream_id}/readings",
    response_model=StreamReadings,
    summary="One stream's retained scored readings: scores, smoothed scores, alert periods",
    responses=problems(s404="No such model."),
)
async def stream_readings(
    stream_id: str,
    _: Annotated[Principal, Depends(require_scope("feedback"))],
    state: StateDep,
    model: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 2000,
) -> StreamReadings:
    served = state.models.get(model)
    found = state.recent.stream_readings(stream_id, float("-inf"), float("inf"), model=served.name)
    points = [
        StreamPoint(
            reading_id=r.reading_id,
            timestamp=as_datetime(r.timestamp),
            score=r.error / r.threshold,
            smoothed_score=r.smoothed,
            anomaly=r.anomaly,
            alert=r.alert,
            suppressed_by_window=r.suppressed_by,
            excluded_from_learning_by_window=r.excluded_by,
        )
        for r in found[-limit:]
        if r.error is not None
    ]
    return StreamReadings(stream_id=stream_id, model=served.name, points=points)


@whoami_router.get("", response_model=WhoAmI, summary="The presented key's name and scopes")
async def whoami(principal: Annotated[Principal, Depends(ANY_KEY)]) -> WhoAmI:
    return WhoAmI(name=principal.name, scopes=sorted(principal.scopes))


class SensorContribution(BaseModel):
    sensor: str
    share: float = Field(description="This sensor's share of the reading's squared error (0-1).")
    observed: float = Field(description="The value received.")
    reconstructed: float | None = Field(
        description="What the model expected; None when the reply skipped computing it "
        "(columnar bodies) or the model's error does not give it back (a window's mean "
        "error, or DPCA, CVA and a whitened residual, whose statistic expects nothing of the "
        "reading)."
    )


class ReviewItem(BaseModel):
    reading_id: str
    stream_id: str
    model: str
    model_version: str
    timestamp: datetime
    error: float | None
    score: float | None = Field(description="error / the threshold in force when scored.")
    threshold: float
    threshold_version: int
    anomaly: bool
    alert: bool
    smoothed_score: float | None = None
    suppressed_by_window: int | None = None
    excluded_from_learning_by_window: int | None = None
    sensors: list[SensorContribution] = Field(
        default_factory=list, description="The largest contributors first."
    )

    @classmethod
    def of(
        cls, reading: RecentReading, model: LoadedModel | None = None, top: int = 0
    ) -> ReviewItem:
        """``model``: the served model, whose sensors' ``top`` largest shares are listed."""
        return cls(
            reading_id=reading.reading_id,
            stream_id=reading.stream_id,
            model=reading.model,
            model_version=reading.model_version,
            timestamp=datetime.fromtimestamp(reading.timestamp, tz=UTC),
            error=reading.error,
            score=None if reading.error is None else reading.error / reading.threshold,
            threshold=reading.threshold,
            threshold_version=reading.threshold_version,
            anomaly=reading.anomaly,
            alert=reading.alert,
            smoothed_score=reading.smoothed,
            suppressed_by_window=reading.suppressed_by,
            excluded_from_learning_by_window=reading.excluded_by,
            sensors=[] if model is None else contributions(reading, model, top),
        )


def reconstructs_the_reading(manifest: Manifest) -> bool:
    """Whether a sensor's squared error is that of the reading's own reconstruction, so
    that the observed value, its sign and the error give back what the model expected: a
    network over one reading scoring the squares of its residual
    (``Manifest.expects_readings``). Over a window the error is the window's mean."""
    return manifest.window == 1 and manifest.expects_readings


def contributions(reading: RecentReading, model: LoadedModel, top: int) -> list[SensorContribution]:
    """The reading's largest contributors, with what the model expected where that can be
    told (:func:`reconstructs_the_reading`): squared errors are in standardised units (the
    artifact contract), so the reconstruction is the observed value less the residual's
    sign times scale times the root of the squared error."""
    squared = reading.squared_errors
    if squared is None or not top or reading.model_version != model.version:
        return []
    total = float(squared.sum(dtype=np.float64))
    order = np.argsort(-squared, kind="stable")[:top].tolist()
    observed = reading.values.tolist()
    expected = None
    if reading.above_reconstruction is not None and reconstructs_the_reading(model.manifest):
        sign = np.where(reading.above_reconstruction, 1.0, -1.0)
        scale = np.asarray(model.manifest.scaler.scale, dtype=np.float64)
        residual = sign * scale * np.sqrt(squared.astype(np.float64))
        expected = (reading.values.astype(np.float64) - residual).tolist()
    sensors = model.sensors
    return [
        SensorContribution(
            sensor=sensors[j],
            share=float(squared[j]) / total if total > 0 else 0.0,
            observed=observed[j],
            reconstructed=None if expected is None else expected[j],
        )
        for j in order
    ]


class ReviewQueueOut(BaseModel):
    model: str
    size: int = Field(description="How many readings are listed (alerts plus audit sample).")
    alerts: list[ReviewItem] = Field(
        description="The newest readings taken during an alert that nobody labelled yet, "
        "newest first, at most ANOMALY_REVIEW_ALERT_LIMIT."
    )
    more_alerts: bool = Field(
        default=False,
        description="More unlabelled alerts may be waiting than are listed (older ones): "
        "label these and ask again. False: every unlabelled retained alert is listed.",
    )
    audit_sample: list[ReviewItem] = Field(
        description="A uniform random sample of unflagged readings: confirming these as normal "
        "keeps the recalibration sample from being biased toward high errors."
    )


@router.get(
    "/review-queue",
    response_model=ReviewQueueOut,
    summary="Readings awaiting review: recent alerts plus a random audit sample",
    responses=problems(s404="No such model."),
)
async def review_queue(
    _: FeedbackPrincipal,
    desk: DeskDep,
    model: ModelQuery = None,
    stream_id: Annotated[str | None, Query(description="Only this stream's readings.")] = None,
) -> ReviewQueueOut:
    queue = await desk.review_queue(model, stream_id=stream_id)
    served = desk.model(queue.model)
    top = desk.settings.top_k_sensors
    return ReviewQueueOut(
        model=queue.model,
        size=queue.size,
        alerts=[ReviewItem.of(r, served, top) for r in queue.alerts],
        more_alerts=queue.more_alerts,
        audit_sample=[ReviewItem.of(r, served, top) for r in queue.audit_sample],
    )
