"""Per-stream state: what the smoothing and alert rule currently hold for a stream."""

from __future__ import annotations

import time

from fastapi import APIRouter

from service.api.openapi import problems
from service.api.params import ModelQuery
from service.errors import UnknownStream
from service.schemas import StreamStatus
from service.scoring.decision import ALERT, STATE_NAMES, SUPPRESSED, WARMING_UP
from service.scoring.streams import StreamState
from service.state import AppState, StateDep

router = APIRouter(prefix="/v1/streams", tags=["streams"])


async def find_stream(
    state: AppState, stream_id: str, model: str | None
) -> tuple[str, StreamState]:
    served = state.models.get(model)
    stream = await state.stream_store.peek((served.name, stream_id))
    if stream is None:
        raise UnknownStream(
            f"no state for stream {stream_id!r} on model {served.name!r}: it was never scored, "
            "was idle longer than the TTL, or was evicted"
        )
    return served.name, stream


@router.get(
    "/{stream_id}",
    response_model=StreamStatus,
    summary="A stream's smoothing and alert state",
    responses=problems(s404="No state for that stream, or no such model."),
)
async def get_stream(stream_id: str, state: StateDep, model: ModelQuery = None) -> StreamStatus:
    name, stream = await find_stream(state, stream_id, model)
    warming = stream.context < stream.window - 1
    phase = WARMING_UP if warming else stream.debouncer.phase
    if phase == ALERT:  # as a reading scored now would report it
        match = state.maintenance.match(name, stream_id, time.time())
        if match is not None and match.suppressed_by is not None:
            phase = SUPPRESSED
    return StreamStatus(
        stream_id=stream_id,
        model=name,
        model_version=stream.model_version,
        alert_state=STATE_NAMES[phase],
        # over the threshold in force, as the stream's next reading will be smoothed
        smoothed_score=stream.smoother.get() * stream.unit / state.thresholds.get(name).value,
        readings_buffered=stream.filled,
        window=stream.window,
        idle_seconds=max(0.0, state.stream_store.clock() - stream.last_seen),
    )
