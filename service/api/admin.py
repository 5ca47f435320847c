"""Administrative operations. Guarded by a router-level dependency where access control is on.

A reload verifies every artifact before swapping any in, so a corrupt or mismatched
artifact is refused (409) and the last good model keeps serving.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.responses import Response

from service.api.models import summary
from service.api.openapi import problems
from service.api.params import ModelPath, ModelQuery
from service.api.streams import find_stream
from service.schemas import ReloadResult
from service.scoring.registry import LoadedModel
from service.state import AppState, StateDep

router = APIRouter(prefix="/v1/admin", tags=["admin"])

_REFUSED = "An artifact is bad, or there is none; nothing was swapped."


async def _reload(state: AppState, name: str | None) -> ReloadResult:
    before: dict[str, LoadedModel] = {m.name: m for m in state.models.models()}
    # Synchronous on purpose: a reload is rare, and running it on the event loop means no
    # request ever sees a new model with an old threshold. The keeper puts the stored
    # threshold of each model version (or its manifest's, persisted) in force, after any
    # recalibration run in progress has finished.
    loaded = await state.keeper.swap_models(lambda: state.models.reload(name))
    for model in loaded:
        old = before.get(model.name)
        # Another artifact under the name, even one rewritten under the same version: a
        # stream's window, smoothing and glitch guard belong to the model that began it (the
        # pipeline starts such a stream afresh anyway; dropping frees its state now).
        if old is not None and old.fingerprint != model.fingerprint:
            await state.stream_store.drop_model(model.name)
    return ReloadResult(reloaded=[summary(state.models, state.thresholds, m) for m in loaded])


@router.delete(
    "/streams/{stream_id}",
    status_code=204,
    summary="Forget a stream's smoothing, alert and window state (e.g. after maintenance)",
    responses=problems(s404="No state for that stream, or no such model."),
)
async def reset_stream(stream_id: str, state: StateDep, model: ModelQuery = None) -> Response:
    name, _ = await find_stream(state, stream_id, model)
    await state.stream_store.drop((name, stream_id))
    return Response(status_code=204)


@router.post(
    "/models/reload",
    response_model=ReloadResult,
    summary="Re-read every model artifact (all or nothing)",
    responses=problems(s409=_REFUSED),
)
async def reload_all(state: StateDep) -> ReloadResult:
    return await _reload(state, None)


@router.post(
    "/models/{name}/reload",
    response_model=ReloadResult,
    summary="Re-read one model's artifact",
    responses=problems(s404="No artifact for that model name.", s409=_REFUSED),
)
async def reload_one(name: ModelPath, state: StateDep) -> ReloadResult:
    return await _reload(state, name)
