"""Request metrics as pure ASGI middleware (BaseHTTPMiddleware costs far more per request).

Labels are the route template (never the raw path), the method and the status, so the
series stay bounded; /metrics and the health probes are left out.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client.metrics import Counter, Histogram
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
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._metrics_id = 0

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
        metrics = services.metrics
        if id(metrics) != self._metrics_id:  # a new lifespan built new collectors
            self._children.clear()
            self._metrics_id = id(metrics)
        route: Any = scope.get("route")
        endpoint = getattr(route, "path", None) or scope.get(GUARDED_PREFIX_KEY) or "unmatched"
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        key = (endpoint, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                metrics.http_requests.labels(endpoint, method, str(status)),
                metrics.http_request_duration.labels(endpoint),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)
