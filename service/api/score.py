"""POST /v1/score: the hot path. The body is read raw and parsed by hand (orjson → numpy);
the schemas in ``service.schemas`` document it for OpenAPI."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from service.errors import InvalidRequest, PayloadTooLarge
from service.schemas import BulkScoreResponse, Problem, ScoreResponse
from service.scoring.payload import (
    is_binary,
    is_json,
    media_type,
    parse_binary,
    parse_json,
    unsupported,
)
from service.scoring.pipeline import render_columnar, render_json
from service.state import AppState, StateDep

router = APIRouter(prefix="/v1", tags=["scoring"])


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes whatever Content-Length claims."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest(f"Content-Length {declared!r} is not a byte count")
        if int(declared) > limit:
            raise PayloadTooLarge(f"the body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def score_body(
    state: AppState,
    body: bytes,
    kind: str,
    *,
    stream_id: str | None = None,
    model: str | None = None,
) -> bytes:
    """Transport-neutral: a body of a known media type in, the JSON reply out."""
    settings = state.settings
    if is_json(kind):
        parsed = parse_json(body, settings.max_batch_readings)
        return render_json(state.pipeline.score(parsed), parsed.single)
    served = state.models.get(model)
    parsed = parse_binary(
        body,
        kind,
        stream_id=stream_id,
        model=served.name,
        n_sensors=served.manifest.n_sensors,
        max_readings=settings.max_batch_readings,
    )
    return render_columnar(state.pipeline.score(parsed))


_SINGLE = {"stream_id": "pump-7", "reading": [0.12, 3.4, 51.0, 0.98]}
_BATCH = {
    "stream_id": "pump-7",
    "readings": [
        [0.12, 3.4, 51.0, 0.98],
        {"values": [0.13, 3.5, 50.7, 0.97], "timestamp": "2026-01-05T10:00:01Z"},
    ],
}
_NAMED = {
    "stream_id": "pump-7",
    "model": "synthetic-plant",
    "reading": {
        "values": {"s00": 0.12, "s01": 3.4, "s02": 51.0, "s03": 0.98},
        "reading_id": "scada-184467",
        "timestamp": 1767607201.0,
    },
}
_RESULT: dict[str, Any] = {
    "reading_id": "scada-184467",
    "status": "scored",
    "error": 2.75,
    "score": 1.31,
    "anomaly": True,
    "smoothed_score": 0.62,
    "alert_state": "normal",
    "alert": False,
    "top_sensors": [
        {"sensor": "s02", "share": 0.81, "observed": 51.0, "reconstructed": 47.2},
        {"sensor": "s00", "share": 0.11, "observed": 0.12, "reconstructed": 0.31},
    ],
    "timestamp": 1767607201.0,
    "model": "synthetic-plant",
    "model_version": "1",
    "threshold": 2.1,
    "threshold_version": 1,
}
_REPLY = {
    "stream_id": "pump-7",
    "model": "synthetic-plant",
    "model_version": "1",
    "threshold": 2.1,
    "threshold_version": 1,
    "result": _RESULT,
}
_PARAMETERS = [
    {
        "name": "stream_id",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Binary bodies only (or the X-Stream-Id header): the stream.",
    },
    {
        "name": "model",
        "in": "query",
        "required": False,
        "schema": {"type": "string"},
        "description": "Binary bodies only (or the X-Model header): the model; default model "
        "otherwise.",
    },
]
_REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"$ref": "#/components/schemas/ScoreRequest"},
            "examples": {
                "single": {"summary": "One reading, manifest order", "value": _SINGLE},
                "batch": {"summary": "A batch, bare and wrapped readings", "value": _BATCH},
                "named": {"summary": "Sensors by name, with id and timestamp", "value": _NAMED},
            },
        },
        "application/octet-stream": {
            "schema": {"type": "string", "format": "binary"},
            "description": "Little-endian float32, readings × sensors in manifest order "
            "(e.g. `numpy_array.astype('<f4').tobytes()`); stream via ?stream_id= or "
            "X-Stream-Id. Replies with the columnar BulkScoreResponse.",
        },
        "application/x-npy": {
            "schema": {"type": "string", "format": "binary"},
            "description": "A 2-D .npy array (readings × sensors), e.g. from `numpy.save`.",
        },
    },
}


@router.post(
    "/score",
    summary="Score one reading or a batch from one stream",
    description=(
        "Scores readings by reconstruction error and returns, per reading, the error, the "
        "threshold in force, the normalised score, the instantaneous anomaly flag, the "
        "stream's smoothed score and debounced alert state, and the sensors that "
        "contributed most. Windowed models answer `warming_up` until a stream has enough "
        "readings. Bad input is refused with an RFC 9457 problem body naming the field and "
        "reading index, and leaves the stream's state untouched."
    ),
    response_class=Response,
    responses={
        200: {
            "description": "Scores: per reading for JSON bodies, columnar for binary ones.",
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [
                            {"$ref": "#/components/schemas/ScoreResponse"},
                            {"$ref": "#/components/schemas/BulkScoreResponse"},
                        ]
                    },
                    "example": _REPLY,
                }
            },
        },
        400: {"model": Problem, "description": "The body is not valid JSON."},
        404: {"model": Problem, "description": "Unknown model."},
        413: {"model": Problem, "description": "Body or batch too large."},
        415: {"model": Problem, "description": "Unsupported content type."},
        422: {"model": Problem, "description": "A field or reading is invalid."},
    },
    openapi_extra={"requestBody": _REQUEST_BODY, "parameters": _PARAMETERS},
)
async def score(request: Request, state: StateDep) -> Response:
    kind = media_type(request.headers.get("content-type"))
    if not (is_json(kind) or is_binary(kind)):
        raise unsupported(kind)
    body = await read_body(request, state.settings.max_body_bytes)
    if is_json(kind):
        reply = score_body(state, body, kind)
    else:
        query = request.query_params
        headers = request.headers
        reply = score_body(
            state,
            body,
            kind,
            stream_id=query.get("stream_id") or headers.get("x-stream-id"),
            model=query.get("model") or headers.get("x-model"),
        )
    return Response(reply, media_type="application/json")


DOCUMENTED_MODELS = (ScoreResponse, BulkScoreResponse)
