"""Request metrics as pure ASGI middleware (BaseHTTPMiddleware costs far more per request).

Labels are the route template (never the raw path), the method and the status, so the
series stay bounded; /metrics and the health probes are left out. Requests are counted
in plain Python numbers and moved into the collectors whenever the registry is read
(``Metrics.before_collect``): a locked ``inc`` plus ``observe`` per request cost more than
the rest of this middleware.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from typing import Any

from prometheus_client.metrics import Counter, Histogram
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

EXCLUDED_PATHS = frozenset({"/metrics", "/healthz", "/readyz"})
GUARDED_PREFIX_KEY = "anomaly.guarded_prefix"
"""Set by the request guard when it refuses a request before routing: the protected prefix
(e.g. ``/v1/admin``) becomes the endpoint label, so such refusals are not "unmatched"."""
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class _Counts:
    """One (route, method, status)'s requests and durations since the last flush."""

    __slots__ = ("bounds", "buckets", "duration", "requests", "seconds", "served")

    def __init__(self, requests: Counter, duration: Histogram) -> None:
        self.requests = requests
        self.duration = duration
        self.bounds: list[float] = list(duration._upper_bounds)
        self.buckets = [0] * len(self.bounds)
        self.served = 0
        self.seconds = 0.0

    def add(self, elapsed: float) -> None:
        self.served += 1
        self.buckets[bisect_left(self.bounds, elapsed)] += 1
        self.seconds += elapsed

    def flush(self) -> None:
        if not self.served:
            return
        self.requests.inc(self.served)
        for index, count in enumerate(self.buckets):
            if count:
                self.duration._buckets[index].inc(count)
                self.buckets[index] = 0
        self.duration._sum.inc(self.seconds)
        self.served = 0
        self.seconds = 0.0


class RequestMetricsMiddleware:
    def __init__(self, app: ASGIApp, excluded_paths: frozenset[str] = EXCLUDED_PATHS) -> None:
        self.app = app
        self.excluded_paths = excluded_paths
        self._counts: dict[tuple[str, str, int], _Counts] = {}
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
            self.flush()
            self._counts.clear()
            self._metrics_id = id(metrics)
            metrics.before_collect.append(self.flush)
        route: Any = scope.get("route")
        endpoint = (
            getattr(route, "path", None)
            or scope.get(GUARDED_PREFIX_KEY)
            or _mount_path(scope)
            or "unmatched"
        )
        method = scope["method"] if scope["method"] in _METHODS else "OTHER"
        key = (endpoint, method, status)
        counts = self._counts.get(key)
        if counts is None:
            counts = _Counts(
                metrics.http_requests.labels(endpoint, method, str(status)),
                metrics.http_request_duration.labels(endpoint),
            )
            self._counts[key] = counts
        counts.add(elapsed)

    def flush(self) -> None:
        """Move the counted requests into the collectors."""
        for counts in self._counts.values():
            counts.flush()


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
