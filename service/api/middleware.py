"""Request metrics as pure ASGI middleware (no BaseHTTPMiddleware on the hot path).

Labels are the route template (never the raw path), the method and the status, so the
series stay bounded; /metrics and the health probes are left out. Each request is added
to the metrics' :class:`~service.collectors.RequestTally`, read when the registry is.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXCLUDED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
GUARDED_PREFIX_KEY = "anomaly.guarded_prefix"
"""Set by the request guard when it refuses a request before routing: the protected prefix
(e.g. ``/v1/admin``) becomes the endpoint label, so such refusals are not "unmatched"."""
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, excluded_paths: frozenset[str] = EXCLUDED_PATHS) -> None:
        self.app = app
        self.excluded_paths = excluded_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.excluded_paths:
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self._record(scope, status, time.perf_counter() - start)

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        services = getattr(scope["app"].state, "services", None)
        if services is None:
            return
        route: Any = scope.get("route")
        endpoint = (
            getattr(route, "path", None)
            or scope.get(GUARDED_PREFIX_KEY)
            or _mount_path(scope)
            or "unmatched"
        )
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        services.metrics.requests.add(endpoint, method, status, elapsed)


def _mount_path(scope: Scope) -> str | None:
    """The prefix of the mounted app that served the request (e.g. the docs' static files),
    which sets no route in the scope; None when no mount matched."""
    served_by = scope.get("endpoint")
    if served_by is None:
        return None
    for route in scope["app"].routes:
        if isinstance(route, Mount) and route.app is served_by:
            return route.path
    return None
