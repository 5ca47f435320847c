"""Replicas sharing one PostgreSQL store: who leads recalibration, and hearing at once of
threshold versions and labels another replica wrote.

One dedicated connection per replica carries both:

- **Leadership**: a session-level advisory lock (``pg_try_advisory_lock``). The replica
  holding it leads; the lock ends with its session, so when the leader dies (its socket
  closes) or loses the server, another replica takes it at its next attempt, one
  ``store_poll_s`` later at most.
- **Changes**: ``LISTEN`` on the channels the store's triggers announce commits on
  (revision 0004): a new threshold version makes the keeper adopt it; new labels count
  toward the label trigger of the recalibration loop (the leader's is the one that acts);
  a maintenance window set or ended anywhere (revision 0005) makes every replica reload
  the windows it matches readings against. Every ``store_poll_s`` the keeper also compares
  versions with the store and the windows are reloaded, so a notification missed while
  the connection was down costs one interval, not a version or a window.

With the embedded SQLite store the single process always leads (:class:`SoloLink`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

import psycopg
import sqlalchemy as sa

from service.redaction import full_reason, public_reason

logger = logging.getLogger(__name__)

THRESHOLD_CHANNEL = "anomaly_thresholds"
LABEL_CHANNEL = "anomaly_labels"
WINDOW_CHANNEL = "anomaly_windows"
# Any 64-bit number no other lock of the database uses.
LEADER_LOCK = 0x616E6F6D616C7932


def announced_labels(payload: str) -> int:
    """How many labels one ``anomaly_labels`` notification announces. Revision 0006 sends
    ``"<count> <first label id>"``: the id keeps two inserts of equal size in one transaction
    from being folded into one notification by PostgreSQL. Revision 0004 sent the count
    alone; anything else counts for none.

    >>> announced_labels("1000 4001"), announced_labels("12"), announced_labels("")
    (1000, 12, 0)
    """
    count = payload.split(" ", 1)[0]
    return int(count) if count.isdigit() else 0


class ReplicaLink(Protocol):
    """What the app asks about its place among replicas."""

    @property
    def leading(self) -> bool:
        """This replica runs the scheduled recalibration."""

    def describe(self) -> str:
        """Who leads, for /readyz."""

    def start(self) -> None:
        """Start the background task, if any (lifespan)."""

    async def stop(self) -> None:
        """Stop it and let go of leadership."""


class SoloLink:
    """One process, one store file: always the leader, nobody to hear from."""

    def __init__(self, on_leading: Callable[[bool], None]) -> None:
        on_leading(True)

    @property
    def leading(self) -> bool:
        return True

    def describe(self) -> str:
        return "this process (single process with the embedded store)"

    def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class PostgresLink:
    """The dedicated connection, its lock and its notifications, kept up by one task."""

    def __init__(
        self,
        url: sa.URL,
        *,
        poll_s: float,
        sync_thresholds: Callable[[], Awaitable[None]],
        labels_stored: Callable[[int], None],
        sync_windows: Callable[[], Awaitable[None]],
        on_leading: Callable[[bool], None],
    ) -> None:
        # libpq's own URL form: the same server and credentials as the store's pool.
        self._conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._poll_s = poll_s
        self._sync_thresholds = sync_thresholds
        self._labels_stored = labels_stored
        self._sync_windows = sync_windows
        self._on_leading = on_leading
        self._leading = False
        self._connected = False
        self._last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        on_leading(False)

    @property
    def leading(self) -> bool:
        return self._leading

    def describe(self) -> str:
        if self._leading:
            return "this replica"
        if self._connected:
            return "another replica"
        return f"unknown: no connection to the store: {self._last_error or 'connecting'}"

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="replica-link")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._set_leading(False)  # the lock went with the closed connection

    def _set_leading(self, leading: bool) -> None:
        if leading != self._leading:
            logger.warning(
                "this replica %s recalibration", "now leads" if leading else "no longer leads"
            )
        self._leading = leading
        self._on_leading(leading)

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                # /readyz, which shows it, answers anyone: the kind only (service.redaction)
                self._last_error = public_reason(exc)
                logger.warning("link to the shared store lost: %s", full_reason(exc))
            self._connected = False
            self._set_leading(False)
            await asyncio.sleep(self._poll_s)

    async def _session(self) -> None:
        """One connection's life: listen, try the lock, relay, poll; returns or raises when
        the connection fails."""
        async with await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=5,
            # A leader cut off without a closed socket still loses its lock (the server
            # ends the session) and learns it itself within these bounds.
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
        ) as conn:
            await conn.execute(f"LISTEN {THRESHOLD_CHANNEL}")
            await conn.execute(f"LISTEN {LABEL_CHANNEL}")
            await conn.execute(f"LISTEN {WINDOW_CHANNEL}")
            self._connected = True
            self._last_error = None
            await self._poll()  # what was written while this replica wasn't listening
            while True:
                if not self._leading:
                    cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (LEADER_LOCK,))
                    row = await cursor.fetchone()
                    if row is not None and row[0]:
                        self._set_leading(True)
                else:
                    await conn.execute("SELECT 1")  # a dead connection raises here
                async for note in conn.notifies(timeout=self._poll_s):
                    if note.channel == THRESHOLD_CHANNEL:
                        await self._poll()
                    elif note.channel == WINDOW_CHANNEL:
                        await self._reload_windows()
                    elif note.channel == LABEL_CHANNEL:
                        self._labels_stored(announced_labels(note.payload))
                await self._poll()

    async def _poll(self) -> None:
        try:
            await self._sync_thresholds()
        except Exception:
            # The store's pool may fail while this connection lives; readiness says so.
            logger.warning("could not compare threshold versions with the store", exc_info=True)
        await self._reload_windows()

    async def _reload_windows(self) -> None:
        try:
            await self._sync_windows()
        except Exception:
            # The windows already loaded stay in force until the store answers again.
            logger.warning("could not reload maintenance windows from the store", exc_info=True)
