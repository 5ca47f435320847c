"""Checks made before any route reads a body: a size limit everywhere, a key where one is
always required.

FastAPI reads and parses a body parameter before it runs the route's dependencies, so
without this an anonymous client could make the server buffer any amount and get a 422
for malformed JSON where a 401 is due. Pure ASGI: nothing is buffered here.
"""

from __future__ import annotations

import sys

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.middleware import GUARDED_PREFIX_KEY
from service.api.problems import problem_response
from service.errors import PayloadTooLarge, ServiceError, UnsupportedMediaType
from service.security import KeyRing, authenticate, presented_key
from service.wire.media import check_encoding


class _BodyTooLarge(Exception):
    """Raised into the app once the 413 is sent, to stop it reading further."""


class RequestGuardMiddleware:
    """``protected_prefixes``: paths (and their sub-paths) whose routes always need a key;
    a missing or unknown key is refused here, the scope is still checked by the route.
    ``own_limit_paths`` enforce the size limit themselves (the scoring hot path)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        keyring: KeyRing,
        protected_prefixes: tuple[str, ...],
        own_limit_paths: frozenset[str] = frozenset(),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.keyring = keyring
        self.protected = protected_prefixes
        self.own_limit_paths = own_limit_paths

    def _protecting_prefix(self, path: str) -> str | None:
        return next((p for p in self.protected if path == p or path.startswith(p + "/")), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.own_limit_paths:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        prefix = self._protecting_prefix(path)
        try:
            if prefix is not None:
                authenticate(self.keyring, presented_key(Request(scope)))
                if has_body(scope) and not _is_json(scope):
                    raise UnsupportedMediaType(
                        "this endpoint reads a JSON body: send it as application/json"
                    )
            if has_body(scope):
                encoding = header(scope, b"content-encoding")
                check_encoding(None if encoding is None else encoding.decode("latin-1"))
            declared = _content_length(scope)
            if declared is not None and declared > self.max_body_bytes:
                raise PayloadTooLarge(
                    f"the body is {declared} bytes; the limit is {self.max_body_bytes}"
                )
        except ServiceError as exc:
            scope[GUARDED_PREFIX_KEY] = prefix or "unmatched"
            await _send_problem(exc, path, send)
            return
        await self._limited(scope, receive, send)

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Counts the bytes as they stream in (Content-Length may be absent or a lie)."""
        received = 0
        refused = False

        async def counting_receive() -> Message:
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes and not refused:
                    refused = True
                    limit = self.max_body_bytes
                    error = PayloadTooLarge(f"the body exceeds the limit of {limit} bytes")
                    await _send_problem(error, scope["path"], send)
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:  # after the 413 the app's own reply (e.g. a 400) goes nowhere
                await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise


MAX_LENGTH_DIGITS = 18


def header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return bytes(value)
    return None


def has_body(scope: Scope) -> bool:
    """A Transfer-Encoding, or a first Content-Length other than zero: one pass over the
    headers (every request with a body asks)."""
    length_seen = False
    for name, value in scope["headers"]:
        if name == b"transfer-encoding":
            return True
        if name == b"content-length" and not length_seen:
            if value.strip(b"0") != b"":
                return True
            length_seen = True
    return False


def _is_json(scope: Scope) -> bool:
    """application/json, or a +json type, whatever the parameters (charset)."""
    media = (header(scope, b"content-type") or b"").split(b";")[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _content_length(scope: Scope) -> int | None:
    value = header(scope, b"content-length")
    if value is None or not value.isdigit():
        return None
    # More digits than any real body has: too large, without int() on thousands of them.
    return int(value) if len(value) <= MAX_LENGTH_DIGITS else sys.maxsize


async def _send_problem(error: ServiceError, path: str, send: Send) -> None:
    headers: dict[str, str] | None = getattr(error, "headers", None)
    response = problem_response(error.problem(instance=path), headers=headers)
    await send(
        {
            "type": "http.response.start",
            "status": response.status_code,
            "headers": response.raw_headers,
        }
    )
    await send({"type": "http.response.body", "body": response.body})
