"""The empty-endpoint baseline: the fastest a FastAPI route served by uvicorn can answer.

The load tests serve it beside the service, with the same uvicorn flags, so the service's
requests/s is read as a ratio measured in the same run on the same core rather than as an
absolute figure that depends on the machine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from fastapi import FastAPI

EMPTY_PATH = "/empty"
Message = MutableMapping[str, Any]
AsgiApp = Callable[
    [
        MutableMapping[str, Any],
        Callable[[], Awaitable[Message]],
        Callable[[Message], Awaitable[None]],
    ],
    Awaitable[None],
]


def create_app() -> FastAPI:
    """An app with one empty async POST route that ignores its body (uvicorn ``--factory``),
    configured as the service runs by default: FastAPI's OpenTelemetry check off."""
    app = FastAPI(
        title="empty endpoint baseline",
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )

    @app.post(EMPTY_PATH)
    async def empty() -> None:
        return None

    return app


def create_raw_app() -> AsgiApp:
    """The floor: a bare ASGI app (no framework) that drains the body and answers ``null``,
    so the table shows what uvicorn itself costs and what FastAPI adds."""

    async def app(
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"4")],
            }
        )
        await send({"type": "http.response.body", "body": b"null"})

    return app
