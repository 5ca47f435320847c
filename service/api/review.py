"""What an operator reviews besides the queue: one stream's recent scores (the console's
stream view), and who the presented key is (what the console may offer it)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from service.api.openapi import problems
from service.schemas import as_datetime
from service.security import SCOPES, Principal, require_scope
from service.settings import Scope
from service.state import StateDep

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
