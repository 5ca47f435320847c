"""/console: the operator's console, served by the service itself (no CDN, no build step).

The page is static; every action it offers goes through the public API with the key the
operator signs in with, so a key can do in the console exactly what its scopes allow.
The key stays in the tab's session storage and travels only in the Authorization header
(never in a URL, so never in an access log). The Content-Security-Policy allows scripts,
styles and requests from this origin only, and no inline script or style.
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path, PurePosixPath

from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.problems import problem_response
from service.errors import problem_body

CONSOLE_PATH = "/console"
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


# The files a browser loads: the page's scripts and style sheet, nothing else of the package
# (its __init__.py sits in the same folder).
ASSET_SUFFIXES = frozenset({".js", ".css"})


class _ConsoleAssets(StaticFiles):
    """The console's own scripts and style sheet; any other file is not found."""

    def lookup_path(self, path: str) -> tuple[str, os.stat_result | None]:
        # A NUL byte no file name holds: the file system would raise, answered as a 500.
        if "\x00" in path or PurePosixPath(path).suffix not in ASSET_SUFFIXES:
            return "", None
        return super().lookup_path(path)


class _WithSecurityHeaders:
    """Adds :data:`SECURITY_HEADERS` to every response of the wrapped app, its refusals
    (404, 405) included: they are answered here, as problems, instead of by the app's
    handlers, which would send them without the headers."""

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

        try:
            await self.app(scope, receive, send_with_headers)
        except HTTPException as exc:
            await _refusal(exc, scope["path"])(scope, receive, send_with_headers)


def _refusal(exc: HTTPException, path: str) -> Response:
    title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
    body = problem_body(
        status=exc.status_code,
        slug=title.lower().replace(" ", "-"),
        title=title,
        detail=str(exc.detail),
        instance=path,
    )
    # Everything under /console is read-only.
    headers = {"Allow": "GET, HEAD"} if exc.status_code == 405 else None
    return problem_response(body, headers=headers)


class _Page:
    """The page itself (GET and HEAD). An ASGI app, not an endpoint function, so a route
    hands it every method and its 405 reaches :class:`_WithSecurityHeaders`."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            raise HTTPException(status_code=405)
        page = FileResponse(ASSETS_DIR / "index.html", media_type="text/html")
        await page(scope, receive, send)


def install_console(app: FastAPI) -> None:
    """Serve the page at /console and /console/ (GET and HEAD) and its files under
    /console/assets; any other path under /console is a 404 carrying the same headers."""
    console = Router(
        routes=[
            Route("/", _Page()),
            Mount("/assets", _ConsoleAssets(directory=ASSETS_DIR), name="console-assets"),
        ]
    )
    # /console itself, which the mount below (/console/...) does not match.
    app.router.routes.append(
        Route(CONSOLE_PATH, _WithSecurityHeaders(_Page()), include_in_schema=False)
    )
    app.mount(CONSOLE_PATH, _WithSecurityHeaders(console), name="console")
