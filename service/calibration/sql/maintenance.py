"""Maintenance windows and their audit trail; a change and its audit line are written in
one transaction."""

from __future__ import annotations

import sqlalchemy as sa

from service.calibration.records import MaintenanceEvent, MaintenanceWindow, WindowSpec
from service.calibration.sql.database import SqlDatabase, from_row
from service.calibration.sql.schema import maintenance_window_events as events
from service.calibration.sql.schema import maintenance_windows as windows
from service.calibration.store import WindowAlreadyEnded, WindowNotFound


class MaintenanceTables(SqlDatabase):
    """The ``maintenance_windows`` and ``maintenance_window_events`` tables."""

    @staticmethod
    def _window(row: sa.RowMapping) -> MaintenanceWindow:
        return from_row(
            MaintenanceWindow,
            row,
            suppress_alerts=bool(row["suppress_alerts"]),
            exclude_from_learning=bool(row["exclude_from_learning"]),
        )

    @staticmethod
    def _audit(
        conn: sa.Connection, window_id: int, action: str, author: str, reason: str, at: float
    ) -> None:
        conn.execute(
            sa.insert(events).values(
                window_id=window_id, action=action, author=author, reason=reason, at=at
            )
        )

    @staticmethod
    def _row(conn: sa.Connection, window_id: int, *, lock: bool = False) -> sa.RowMapping:
        query = sa.select(windows).where(windows.c.id == window_id)
        if lock:
            # Two replicas ending one window take turns; the second sees it ended.
            query = query.with_for_update()
        row = conn.execute(query).mappings().first()
        if row is None:
            raise WindowNotFound(window_id)
        return row

    def create_window(self, spec: WindowSpec, *, author: str) -> MaintenanceWindow:
        now = self._clock()

        def work(conn: sa.Connection) -> MaintenanceWindow:
            window_id = conn.execute(
                sa.insert(windows)
                .values(
                    model=spec.model,
                    stream_id=spec.stream_id,
                    stream_prefix=spec.stream_prefix,
                    starts_at=spec.starts_at,
                    ends_at=spec.ends_at,
                    suppress_alerts=int(spec.suppress_alerts),
                    exclude_from_learning=int(spec.exclude_from_learning),
                    reason=spec.reason,
                    author=author,
                    created_at=now,
                )
                .returning(windows.c.id)
            ).scalar_one()
            self._audit(conn, window_id, "created", author, spec.reason, now)
            return self._window(self._row(conn, window_id))

        return self._write(work)

    def end_window(self, window_id: int, *, author: str, reason: str) -> MaintenanceWindow:
        now = self._clock()

        def work(conn: sa.Connection) -> MaintenanceWindow:
            if self._window(self._row(conn, window_id, lock=True)).until <= now:
                raise WindowAlreadyEnded(window_id)
            conn.execute(
                sa.update(windows)
                .where(windows.c.id == window_id)
                .values(ended_at=now, ended_by=author, end_reason=reason)
            )
            self._audit(conn, window_id, "ended", author, reason, now)
            return self._window(self._row(conn, window_id))

        return self._write(work)

    def get_window(self, window_id: int) -> MaintenanceWindow:
        return self._window(self._read(lambda conn: self._row(conn, window_id)))

    def list_windows(
        self, *, since: float | None = None, limit: int = 200
    ) -> list[MaintenanceWindow]:
        query = sa.select(windows).order_by(windows.c.id.desc()).limit(limit)
        if since is not None:
            query = query.where(
                sa.or_(windows.c.ended_at.is_(None), windows.c.ended_at >= since),
                sa.or_(windows.c.ends_at.is_(None), windows.c.ends_at >= since),
            )
        return [self._window(r) for r in self._rows(query)]

    def window_events(self, window_id: int) -> list[MaintenanceEvent]:
        query = sa.select(events).where(events.c.window_id == window_id).order_by(events.c.id)
        return [from_row(MaintenanceEvent, r) for r in self._rows(query)]
