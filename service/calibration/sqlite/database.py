"""The SQLite connection, its transactions and its migrations: what every table shares.

Durability: WAL mode with ``synchronous=FULL``, so a method that returns has its
transaction fsynced to the WAL; the API acknowledges a label only after that.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

from service.calibration.sqlite.migrations import MIGRATIONS
from service.calibration.store import StoreError, StoreUnavailable

RecordT = TypeVar("RecordT")


def from_row(record_type: type[RecordT], row: sqlite3.Row, **decoded: Any) -> RecordT:
    """A record from a row whose columns carry its field names; ``decoded`` overrides the
    columns stored as JSON or integers that need converting."""
    columns = {f.name: row[f.name] for f in fields(record_type)}  # type: ignore[arg-type]
    return record_type(**(columns | decoded))


def loads_floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in json.loads(text))


class SqliteDatabase:
    """One connection guarded by a lock (SQLite serialises writers anyway); the table
    classes add the protocol's methods on top."""

    def __init__(self, path: Path | str, *, clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.RLock()
        try:
            if str(path) != ":memory:":
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                str(path), isolation_level=None, check_same_thread=False, timeout=10.0
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except (sqlite3.Error, OSError) as exc:
            raise StoreUnavailable(path, str(exc)) from exc

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock up front so version numbers can't race."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, params).fetchall())

    def _migrate(self) -> None:
        with self._transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
            )
            applied = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            known = {number for number, _, _ in MIGRATIONS}
            unknown = sorted(applied - known)
            if unknown:
                raise StoreError(
                    f"store {self.path} has schema migrations {unknown} this build does not "
                    "know: it was written by a newer version of the service"
                )
            for number, name, migrate in MIGRATIONS:
                if number in applied:
                    continue
                migrate(conn)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (number, name, self._clock()),
                )

    def ping(self) -> None:
        self._query("SELECT 1")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def schema_version(self) -> int:
        rows = self._query("SELECT MAX(version) FROM schema_migrations")
        return int(rows[0][0] or 0)
