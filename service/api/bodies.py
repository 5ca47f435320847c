"""JSON bodies of the routes FastAPI parses: a repeated key is refused (422 naming it)
rather than resolved to its last value (``service.wire.json_keys`` says why)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from service.wire.json_keys import loads_refusing_repeats


class RepeatedKeyRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_refusing_repeats(await self.body())
        return self._json


class JsonBodyRoute(APIRoute):
    """FastAPI's documented way to change how a route reads its request: the route's
    handler gets a :class:`RepeatedKeyRequest`. A refusal raised while FastAPI reads the
    body reaches the problem handler as the cause of its 400, which answers with it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def refusing_repeats(request: Request) -> Response:
            return await handler(RepeatedKeyRequest(request.scope, request.receive))

        return refusing_repeats
