"""Maintenance windows: the one owner and writer of the windows in force.

An operator sets a window over a model, a stream or streams by prefix, from a start to an
end (or open-ended), with mode ``suppress_alerts`` (readings are still scored and flagged;
their alert state reads ``suppressed`` and no alert is raised or counted) and/or
``exclude_from_learning`` (the readings never reach recalibration, the drift sample or the
audit sample). The store keeps every window and its audit trail; this room keeps the
windows that apply now or later in memory, so the scoring path asks it without I/O.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal

from service.calibration.records import MaintenanceEvent, MaintenanceWindow, WindowSpec
from service.calibration.store import FeedbackStore, WindowAlreadyEnded, WindowNotFound
from service.errors import FieldError, InvalidRequest, ServiceError
from service.scoring.decision import WindowMatch
from service.scoring.registry import ModelRegistry


class UnknownWindow(ServiceError):
    status_code = 404
    slug = "unknown-maintenance-window"
    title = "No maintenance window with this id"


class WindowEnded(ServiceError):
    status_code = 409
    slug = "maintenance-window-ended"
    title = "The maintenance window has already ended"


Mode = Literal["suppress_alerts", "exclude_from_learning"]


def modes_of(window: MaintenanceWindow) -> list[Mode]:
    modes: list[Mode] = []
    if window.suppress_alerts:
        modes.append("suppress_alerts")
    if window.exclude_from_learning:
        modes.append("exclude_from_learning")
    return modes


class MaintenanceWindows:
    """Creates, ends and lists windows (through the store) and answers, for a reading,
    which windows cover it (from memory)."""

    def __init__(
        self,
        *,
        store: FeedbackStore,
        models: ModelRegistry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.models = models
        self.clock = clock
        self._open: tuple[MaintenanceWindow, ...] = ()  # not over yet, oldest first

    # --- the hot path -------------------------------------------------------------------

    def match(self, model: str, stream_id: str | None, at: float) -> WindowMatch | None:
        """The lowest-numbered windows of each mode covering this reading, or None."""
        windows = self._open
        if not windows:
            return None
        suppressed_by = excluded_by = None
        for window in windows:
            if window.covers(model, stream_id, at):
                if window.suppress_alerts and suppressed_by is None:
                    suppressed_by = window.id
                if window.exclude_from_learning and excluded_by is None:
                    excluded_by = window.id
        if suppressed_by is None and excluded_by is None:
            return None
        return WindowMatch(suppressed_by=suppressed_by, excluded_by=excluded_by)

    def active(self) -> list[MaintenanceWindow]:
        """Windows in force now (the metrics read this)."""
        now = self.clock()
        return [w for w in self._open if w.starts_at <= now < w.until]

    # --- operators ----------------------------------------------------------------------

    async def restore(self) -> None:
        """Load the windows not yet over (start-up, and after any change)."""
        now = self.clock()
        windows = await asyncio.to_thread(self.store.list_windows, since=now, limit=10_000)
        # Replaced whole: the scoring path reads the tuple without a lock.
        self._open = tuple(sorted((w for w in windows if w.until > now), key=lambda w: w.id))

    async def create(self, spec: WindowSpec, *, author: str) -> MaintenanceWindow:
        if spec.model is not None:
            self.models.get(spec.model)  # 404 for a model not served
        if not (spec.suppress_alerts or spec.exclude_from_learning):
            message = "a maintenance window needs at least one mode"
            raise InvalidRequest(message, errors=[FieldError("modes", message)])
        now = self.clock()
        if spec.ends_at is not None and spec.ends_at <= max(spec.starts_at, now):
            message = (
                f"{_utc(spec.ends_at)} must be after the start ({_utc(spec.starts_at)}) and "
                f"after the server's clock ({_utc(now)})"
            )
            raise InvalidRequest(
                "a maintenance window must end after it starts and after now",
                errors=[FieldError("ends_at", message)],
            )
        window = await asyncio.to_thread(self.store.create_window, spec, author=author)
        await self.restore()
        return window

    async def end(self, window_id: int, *, author: str, reason: str) -> MaintenanceWindow:
        try:
            window = await asyncio.to_thread(
                self.store.end_window, window_id, author=author, reason=reason
            )
        except WindowNotFound as exc:
            raise UnknownWindow(str(exc)) from exc
        except WindowAlreadyEnded as exc:
            raise WindowEnded(str(exc)) from exc
        await self.restore()
        return window

    async def get(self, window_id: int) -> tuple[MaintenanceWindow, list[MaintenanceEvent]]:
        try:
            window = await asyncio.to_thread(self.store.get_window, window_id)
        except WindowNotFound as exc:
            raise UnknownWindow(str(exc)) from exc
        events = await asyncio.to_thread(self.store.window_events, window_id)
        return window, events

    async def listing(self, *, current_only: bool, limit: int) -> list[MaintenanceWindow]:
        since = self.clock() if current_only else None
        return await asyncio.to_thread(self.store.list_windows, since=since, limit=limit)


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
