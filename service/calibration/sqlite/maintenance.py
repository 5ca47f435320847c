"""Maintenance windows and their audit trail in SQLite; a change and its audit line are
written in one transaction."""

from __future__ import annotations

import sqlite3

from service.calibration.records import MaintenanceEvent, MaintenanceWindow, WindowSpec
from service.calibration.sqlite.database import SqliteDatabase, from_row
from service.calibration.store import WindowAlreadyEnded, WindowNotFound


class MaintenanceTables(SqliteDatabase):
    """The ``maintenance_windows`` and ``maintenance_window_events`` tables."""

    @staticmethod
    def _window(row: sqlite3.Row) -> MaintenanceWindow:
        return from_row(
            MaintenanceWindow,
            row,
            suppress_alerts=bool(row["suppress_alerts"]),
            exclude_from_learning=bool(row["exclude_from_learning"]),
        )

    @staticmethod
    def _audit(
        conn: sqlite3.Connection, window_id: int, action: str, author: str, reason: str, at: float
    ) -> None:
        conn.execute(
            "INSERT INTO maintenance_window_events (window_id, action, author, reason, at) "
            "VALUES (?, ?, ?, ?, ?)",
            (window_id, action, author, reason, at),
        )

    def create_window(self, spec: WindowSpec, *, author: str) -> MaintenanceWindow:
        now = self._clock()
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO maintenance_windows (model, stream_id, stream_prefix, starts_at, "
                "ends_at, suppress_alerts, exclude_from_learning, reason, author, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    spec.model,
                    spec.stream_id,
                    spec.stream_prefix,
                    spec.starts_at,
                    spec.ends_at,
                    int(spec.suppress_alerts),
                    int(spec.exclude_from_learning),
                    spec.reason,
                    author,
                    now,
                ),
            )
            window_id = int(cursor.lastrowid or 0)
            self._audit(conn, window_id, "created", author, spec.reason, now)
            row = conn.execute(
                "SELECT * FROM maintenance_windows WHERE id = ?", (window_id,)
            ).fetchone()
            return self._window(row)

    def end_window(self, window_id: int, *, author: str, reason: str) -> MaintenanceWindow:
        now = self._clock()
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT * FROM maintenance_windows WHERE id = ?", (window_id,)
            ).fetchone()
            if row is None:
                raise WindowNotFound(window_id)
            window = self._window(row)
            if window.until <= now:
                raise WindowAlreadyEnded(window_id)
            conn.execute(
                "UPDATE maintenance_windows SET ended_at = ?, ended_by = ?, end_reason = ? "
                "WHERE id = ?",
                (now, author, reason, window_id),
            )
            self._audit(conn, window_id, "ended", author, reason, now)
            row = conn.execute(
                "SELECT * FROM maintenance_windows WHERE id = ?", (window_id,)
            ).fetchone()
            return self._window(row)

    def get_window(self, window_id: int) -> MaintenanceWindow:
        rows = self._query("SELECT * FROM maintenance_windows WHERE id = ?", (window_id,))
        if not rows:
            raise WindowNotFound(window_id)
        return self._window(rows[0])

    def list_windows(
        self, *, since: float | None = None, limit: int = 200
    ) -> list[MaintenanceWindow]:
        if since is None:
            rows = self._query(
                "SELECT * FROM maintenance_windows ORDER BY id DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._query(
                "SELECT * FROM maintenance_windows WHERE (ended_at IS NULL OR ended_at >= ?) "
                "AND (ends_at IS NULL OR ends_at >= ?) ORDER BY id DESC LIMIT ?",
                (since, since, limit),
            )
        return [self._window(r) for r in rows]

    def window_events(self, window_id: int) -> list[MaintenanceEvent]:
        rows = self._query(
            "SELECT * FROM maintenance_window_events WHERE window_id = ? ORDER BY id",
            (window_id,),
        )
        return [from_row(MaintenanceEvent, r) for r in rows]
