"""The empty-endpoint baseline: the fastest a FastAPI route served by uvicorn can answer.

The load tests serve it beside the service, with the same uvicorn flags, so the service's
requests/s is read as a ratio measured in the same run on the same core rather than as an
absolute figure that depends on the machine.
"""

from __future__ import annotations

from fastapi import FastAPI

EMPTY_PATH = "/empty"


def create_app() -> FastAPI:
    """An app with one empty async POST route that ignores its body (uvicorn ``--factory``)."""
    app = FastAPI(title="empty endpoint baseline", docs_url=None, redoc_url=None)

    @app.post(EMPTY_PATH)
    async def empty() -> None:
        return None

    return app
