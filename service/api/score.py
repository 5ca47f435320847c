"""POST /v1/score: the hot path. The body is read raw and parsed by hand (orjson → numpy);
the schemas in ``service.schemas`` document it for OpenAPI."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.guard import MAX_LENGTH_DIGITS
from service.errors import FieldError, InvalidRequest, PayloadTooLarge
from service.schemas import BulkScoreResponse, Problem, ScoreResponse
from service.scoring.manifest import NAME_MAX_LENGTH, NAME_PATTERN
from service.scoring.payload import MAX_STREAM_ID, STREAM_ID_PATTERN
from service.scoring.registry import LoadedModel
from service.security import require_scope
from service.state import AppState, StateDep, get_state
from service.wire.decode import DTYPES, check_query, parse_binary, parse_json
from service.wire.media import (
    NPZ_TYPE,
    check_encoding,
    is_binary,
    is_json,
    media_type,
    unsupported,
    wants_npz,
)
from service.wire.replies import render_columnar, render_json, render_npz

router = APIRouter(prefix="/v1", tags=["scoring"])


async def read_body(request: Request, limit: int) -> bytes | bytearray:
    """The body, refusing more than ``limit`` bytes whatever Content-Length claims. A body
    that came in several chunks is joined into a bytearray: writable, so a float32 body
    becomes the readings' array without another copy."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise InvalidRequest(f"Content-Length {declared!r} is not a byte count")
        if len(declared) > MAX_LENGTH_DIGITS or int(declared) > limit:
            shown = declared if len(declared) <= MAX_LENGTH_DIGITS else f"{declared[:12]}…"
            raise PayloadTooLarge(f"the body is {shown} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return chunks[0] if len(chunks) == 1 else bytearray().join(chunks)


JSON_REPLY = "application/json"


async def serve_score(request: Request, state: AppState) -> tuple[bytes, str]:
    """POST /v1/score, whichever way the request reached it (the FastAPI route, or
    :class:`LeanScoreMiddleware` in front of the router): the reply and its media type.

    A single JSON reading is scored through the batcher, with the other single readings
    of this turn of the event loop; a batch or a binary body is scored at once."""
    headers = request.headers
    kind = media_type(headers.get("content-type"))
    if not (is_json(kind) or is_binary(kind)):
        raise unsupported(kind)
    check_encoding(headers.get("content-encoding"))
    body = await read_body(request, state.settings.max_body_bytes)
    if is_json(kind):
        if request.scope["query_string"]:
            query = request.query_params
            check_query(query.get("stream_id"), query.get("model"), query.get("dtype"))
        parsed = parse_json(body, state.settings.max_batch_readings)
        if parsed.single:
            return render_json(await state.batcher.score(parsed), single=True), JSON_REPLY
        return render_json(await state.stream_store.score(parsed), single=False), JSON_REPLY
    served = state.models.get(_said_once(request, "model"))
    parsed = parse_binary(
        body,
        kind,
        stream_id=_said_once(request, "stream_id"),
        dtype=_said_once(request, "dtype"),
        model=served.name,
        n_sensors=served.manifest.n_sensors,
        max_readings=state.settings.max_batch_readings,
    )
    scored = await state.stream_store.score(parsed, reconstruct=False)
    if wants_npz(headers.get("accept")):
        return render_npz(scored), NPZ_TYPE
    return render_columnar(scored), JSON_REPLY


def _said_once(request: Request, name: str) -> str | None:
    """A binary body's ``name``, from the query or its header (``stream_id``: X-Stream-Id);
    the two saying different things is refused, not settled by a rule the caller may not
    know."""
    header = "x-" + name.replace("_", "-")
    in_query, in_header = request.query_params.get(name), request.headers.get(header)
    if in_query and in_header and in_query != in_header:
        message = f"?{name}={in_query!r} and the {header} header ({in_header!r}) differ"
        raise InvalidRequest(
            f"the request names its {name} twice, differently: {message}",
            errors=[FieldError(name, message)],
        )
    return in_query or in_header


def request_examples(model: LoadedModel, *, name_model: bool) -> dict[str, Any]:
    """The documented request bodies for a served model: its sensors at their training mean
    (a normal reading), so "Try it out" in /docs scores instead of failing validation.
    ``name_model``: put the model in every body (several served, no default)."""
    reading = [float(f"{v:.6g}") for v in model.manifest.scaler.mean]
    chosen = {"model": model.name} if name_model else {}
    named = {
        "stream_id": "pump-7",
        "model": model.name,
        "reading": {
            "values": dict(zip(model.sensors, reading, strict=True)),
            "reading_id": "scada-184467",
            "timestamp": 1767607201.0,
        },
    }
    batch = {
        "stream_id": "pump-7",
        **chosen,
        "readings": [reading, {"values": reading, "timestamp": "2026-01-05T10:00:01Z"}],
    }
    return {
        "single": {
            "summary": f"One reading, {model.name}'s sensor order",
            "value": {"stream_id": "pump-7", **chosen, "reading": reading},
        },
        "batch": {"summary": "A batch, bare and wrapped readings", "value": batch},
        "named": {"summary": "Sensors by name, with id and timestamp", "value": named},
    }


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
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_STREAM_ID,
            "pattern": STREAM_ID_PATTERN,
        },
        "description": "Binary bodies only (or the X-Stream-Id header): the stream. A JSON "
        "body names its own (this one is checked, not used).",
    },
    {
        "name": "model",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "pattern": NAME_PATTERN, "maxLength": NAME_MAX_LENGTH},
        "description": "Binary bodies only (or the X-Model header): the model; default model "
        "otherwise.",
    },
    {
        "name": "dtype",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": list(DTYPES), "default": "float32"},
        "description": "application/octet-stream bodies only (or the X-Dtype header): the "
        "values' type. A float64 body read as float32 would score as different readings, so "
        "say float64 when you send it (a .npy body carries its own dtype).",
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
            "description": "Little-endian float32 (or float64 with ?dtype=float64), readings × "
            "sensors in manifest order (e.g. `numpy_array.astype('<f4').tobytes()`); stream "
            "via ?stream_id= or X-Stream-Id. Replies with the columnar BulkScoreResponse, or "
            "with the same fields as numpy arrays in an .npz when the request sends "
            "`Accept: application/x-npz`.",
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
                },
                NPZ_TYPE: {
                    "schema": {"type": "string", "format": "binary"},
                    "description": "Binary bodies with `Accept: application/x-npz`: an "
                    "uncompressed .npz holding BulkScoreResponse's fields as arrays "
                    "(`numpy.load(io.BytesIO(reply.content))`).",
                },
            },
        },
        400: {"model": Problem, "description": "The body is not valid JSON."},
        404: {"model": Problem, "description": "Unknown model."},
        413: {"model": Problem, "description": "Body or batch too large."},
        415: {"model": Problem, "description": "Unsupported content type."},
        422: {
            "model": Problem,
            "description": "A field or reading is invalid, or a JSON object repeats a key.",
        },
        503: {
            "model": Problem,
            "description": "Not ready; or, with shared stream state, Redis did not answer "
            "(stream-state-unavailable) or other replicas kept moving the stream "
            "(stream-contention): nothing was scored, retry.",
        },
    },
    openapi_extra={"requestBody": _REQUEST_BODY, "parameters": _PARAMETERS},
)
async def score(request: Request, state: StateDep) -> Response:
    reply, reply_type = await serve_score(request, state)
    return Response(reply, media_type=reply_type)


SCORE_PATH = router.prefix + "/score"
_JSON_CONTENT_TYPE = (b"content-type", JSON_REPLY.encode("latin-1"))


class LeanScoreMiddleware:
    """Serves ``POST /v1/score`` in front of the router when FastAPI does not trace
    requests, skipping its dependency resolution, which costs more than the model call
    on a single reading.

    Both ways in call :func:`serve_score`, so a reading is scored the same way whichever
    serves it. The FastAPI route stays registered: it documents the endpoint in OpenAPI,
    answers any other method, and serves POST when requests are traced (so spans carry
    the route). This path adds only what the route's machinery would: the same access
    check, errors through the app's own exception handlers (problem+json), and
    ``scope["route"]`` set to that route so request metrics carry its template. Must sit
    inside the request-metrics middleware.
    """

    def __init__(self, app: ASGIApp, *, access: require_scope) -> None:
        self.app = app
        self.access = access
        self._route: BaseRoute | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != SCORE_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = self._documented_route()
        request = Request(scope, receive)
        try:
            reply, reply_type = await self._score(request)
        except Exception as exc:
            response = await self._handled(request, exc)
            await response(scope, receive, send)
            return
        length = (b"content-length", str(len(reply)).encode("latin-1"))
        content_type = (
            _JSON_CONTENT_TYPE
            if reply_type == JSON_REPLY
            else (b"content-type", reply_type.encode("latin-1"))
        )
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [length, content_type],
            }
        )
        await send({"type": "http.response.body", "body": reply})

    def _documented_route(self) -> BaseRoute | None:
        if self._route is None:
            for route in router.routes:
                if isinstance(route, Route) and route.path == SCORE_PATH:
                    if route.methods is not None and "POST" in route.methods:
                        self._route = route
                        break
        return self._route

    async def _score(self, request: Request) -> tuple[bytes, str]:
        # The same order as the route: the access dependency runs before the state one.
        await self.access(request)
        return await serve_score(request, get_state(request))

    @staticmethod
    async def _handled(request: Request, exc: Exception) -> Response:
        """The reply the app's exception handlers give; anything only the catch-all
        ``Exception`` handler covers is re-raised to the server-error middleware, as it
        would be from the route."""
        handlers = request.app.exception_handlers
        for cls in type(exc).__mro__:
            if cls is Exception:
                break
            handler = handlers.get(cls)
            if handler is not None:
                response = handler(request, exc)
                if inspect.isawaitable(response):
                    response = await response
                assert isinstance(response, Response)
                return response
        raise exc


DOCUMENTED_MODELS = (ScoreResponse, BulkScoreResponse)
