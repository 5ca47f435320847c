"""The one place errors become HTTP responses: RFC 9457 ``application/problem+json``."""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from service.errors import (
    PROBLEM_CONTENT_TYPE,
    FieldError,
    MalformedBody,
    ServiceError,
    problem_body,
)

logger = logging.getLogger(__name__)


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=int(body["status"]),
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


SHOWN_ERRORS = 3


def _field_of(loc: tuple[Any, ...] | list[Any]) -> tuple[str, int | None]:
    """FastAPI's ``loc`` like ("body", "readings", 3, "values") → ("readings.values", 3)."""
    parts = [p for p in loc if p not in ("body", "query", "path", "header")]
    index = next((p for p in parts if isinstance(p, int)), None)
    name = ".".join(str(p) for p in parts if not isinstance(p, int))
    return name or "body", index


class LogThrottle:
    """At most one log line per kind of error per ``interval_s``; the next one says how many
    were held back. While the service is not ready every request is refused with a 503, and
    one ERROR line each would flood the log and bury the reason.

    >>> throttle = LogThrottle(10.0)
    >>> [throttle.admit("NotReady", now) for now in (0.0, 1.0, 2.0, 12.0)]
    [0, None, None, 2]
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def admit(self, kind: str, now: float) -> int | None:
        """The number of lines held back since the last one when this one may be logged,
        else None (it is counted)."""
        last = self._last.get(kind)
        if last is not None and now - last < self.interval_s:
            self._held[kind] = self._held.get(kind, 0) + 1
            return None
        self._last[kind] = now
        return self._held.pop(kind, 0)


def _service_error_handler(throttle: LogThrottle) -> Any:
    async def _service_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ServiceError)
        if exc.status_code >= 500:
            # by kind and answer: two dependencies failing at once are both logged
            held = throttle.admit(f"{type(exc).__name__}: {exc.detail}", time.monotonic())
            if held is not None:
                more = f" ({held} more like it held back)" if held else ""
                cause = f" [{exc.cause}]" if exc.cause else ""
                logger.error("%s: %s%s%s", type(exc).__name__, exc.detail, cause, more)
        headers: dict[str, str] | None = getattr(exc, "headers", None)
        return problem_response(exc.problem(instance=request.url.path), headers=headers)

    return _service_error


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    undecodable = [err for err in exc.errors() if err.get("type") == "json_invalid"]
    if undecodable:
        # FastAPI reports where JSON decoding stopped as the location: a byte offset, not
        # a reading index. Answered as the scoring endpoint answers bad JSON.
        err = undecodable[0]
        where = _field_of(err.get("loc", ()))[1]
        reason = (err.get("ctx") or {}).get("error", err.get("msg"))
        malformed = MalformedBody(
            f"the body is not valid JSON: {reason}"
            + ("" if where is None else f" (at character {where})")
        )
        return problem_response(malformed.problem(instance=request.url.path))
    errors = []
    for err in exc.errors():
        field, index = _field_of(err.get("loc", ()))
        message = str(err.get("msg"))
        if err.get("type") == "extra_forbidden":  # pydantic: "Extra inputs are not permitted"
            message = "unknown field: not one this part of the body takes (see /docs)"
        errors.append(FieldError(field=field, reading_index=index, message=message))
    # The first few in the detail too: many clients show the detail and nothing else.
    shown = "; ".join(f"{error.field}: {error.message}" for error in errors[:SHOWN_ERRORS])
    more = (
        f" (and {len(errors) - SHOWN_ERRORS} more in errors)" if len(errors) > SHOWN_ERRORS else ""
    )
    body = problem_body(
        status=422,
        slug="invalid-request",
        title="Request failed validation",
        detail=f"{len(errors)} problem(s) with the request: {shown}{more}",
        errors=errors,
        instance=request.url.path,
    )
    return problem_response(body)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    cause = exc.__cause__
    if exc.status_code == 400 and isinstance(cause, ServiceError):
        # Raised while FastAPI read the body (a repeated key): the refusal itself, not a 400.
        return problem_response(cause.problem(instance=request.url.path))
    if exc.status_code == 400 and isinstance(cause, ValueError | RecursionError):
        # FastAPI answers a body the standard parser gives up on in any way but
        # JSONDecodeError with "There was an error parsing the body": say why.
        malformed = MalformedBody(
            "the body is not valid JSON: "
            + _unparsable(cause, request.headers.get("content-length"))
        )
        return problem_response(malformed.problem(instance=request.url.path))
    title = {400: "Bad request", 404: "Not found", 405: "Method not allowed"}.get(
        exc.status_code, "HTTP error"
    )
    body = problem_body(
        status=exc.status_code,
        slug=title.lower().replace(" ", "-"),
        title=title,
        detail=str(exc.detail),
        instance=request.url.path,
    )
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(body, headers=headers or None)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at the request's path. Starlette's 405 names only
    the first route that matched the path, where a path such as /v1/feedback has two."""
    methods: set[str] = set()
    path = request.scope["path"]
    for route in iter_route_contexts(request.app.routes):
        pattern = getattr(route, "path_regex", None)
        if route.methods and pattern is not None and pattern.match(path):
            methods |= route.methods
    return sorted(methods)


def _unparsable(cause: ValueError | RecursionError, body_length: str | None) -> str:
    if isinstance(cause, UnicodeDecodeError):
        return _undecodable(cause, body_length)
    if isinstance(cause, RecursionError):
        return "it is nested too deeply"
    if "digits" in str(cause):  # int() refuses integer literals over sys.get_int_max_str_digits()
        return f"a number has more than {sys.get_int_max_str_digits():,} digits"
    return str(cause)


def _undecodable(cause: UnicodeDecodeError, body_length: str | None) -> str:
    """Where decoding broke, as a byte offset into the body. The standard JSON parser decodes
    what follows a byte-order mark, and guesses UTF-16/32 from zero bytes."""
    if cause.encoding.startswith(("utf-16", "utf-32")):
        return f"it reads as {cause.encoding.upper()}, not UTF-8 ({cause.reason})"
    skipped = 0  # a byte-order mark the decoder was not given
    if body_length is not None and body_length.isdigit():
        skipped = max(0, int(body_length) - len(cause.object))
    return f"it is not UTF-8 ({cause.reason} at byte {cause.start + skipped})"


async def _unexpected(request: Request, exc: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    body = problem_body(
        status=500,
        slug="internal-error",
        title="Internal error",
        detail="the service failed unexpectedly; the error is logged",
        instance=request.url.path,
    )
    return problem_response(body)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client hung up mid-body: nobody reads the reply, so none is logged as an error."""
    logger.debug("client disconnected during %s %s", request.method, request.url.path)
    return Response(status_code=400)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ClientDisconnect, _client_gone)
    app.add_exception_handler(ServiceError, _service_error_handler(LogThrottle(10.0)))
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
