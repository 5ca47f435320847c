"""/console: the operator's console, served by the service itself (no CDN, no build step).

The page is static; every action it offers goes through the public API with the key the
operator signs in with, so a key can do in the console exactly what its scopes allow.
The key stays in the tab's session storage and travels only in the Authorization header
(never in a URL, so never in an access log). The Content-Security-Policy allows scripts,
styles and requests from this origin only, and no inline script or style.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_PATH = "/console"
ASSETS_PATH = "/console/assets"
ASSETS_DIR = Path(str(files("service.console")))
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cache-control": "no-cache",
}


class _WithSecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response of the wrapped app."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.decode().lower() not in SECURITY_HEADERS
                ]
                headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install_console(app: FastAPI) -> None:
    """Serve the page at /console (GET and HEAD) and its files under /console/assets."""
    assets = StaticFiles(directory=ASSETS_DIR)
    app.mount(ASSETS_PATH, _WithSecurityHeaders(assets), name="console-assets")

    async def page(_: object) -> Response:
        response = FileResponse(ASSETS_DIR / "index.html", media_type="text/html")
        response.headers.update(SECURITY_HEADERS)
        return response

    app.add_route(CONSOLE_PATH, page, include_in_schema=False)
    app.add_route(CONSOLE_PATH + "/", page, include_in_schema=False)
