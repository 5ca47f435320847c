"""The store's engine, its transactions and how database failures become store errors.

One SQLAlchemy Core implementation serves both backends:

- SQLite (the embedded default): one connection guarded by a lock, WAL with
  ``synchronous=FULL``, and ``BEGIN IMMEDIATE`` for writes so version numbers can't race.
- PostgreSQL (shared by replicas): a pool of psycopg 3 connections, checked before use so
  the store recovers by itself after the server comes back. Commits are durable by the
  server's own fsync; what several replicas must agree on is held by constraints and row
  locks (see the revisions in ``migrations/``).

A write that loses a race on a unique key (two replicas allocating the same version, an
identical retry arriving at both) is run again from the start: the second time it sees
the winner's row.

The schema is brought up to date (Alembic) when the store opens. A PostgreSQL server that
cannot be reached then does not stop a replica from starting: every call answers
:class:`StoreUnreachable` (a 503) and the first one that reaches the server runs the
upgrade first, under the same advisory lock, so replicas started during an outage upgrade
it once when it is back. A store this build cannot read (written by a newer one) still
refuses to start when found at start-up, and fails every call when found later.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import fields
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event, exc
from sqlalchemy.pool import StaticPool

from service.calibration.sql import migrate
from service.calibration.sql.urls import engine_url, shown
from service.calibration.store import StoreError, StoreUnavailable, StoreUnreachable

logger = logging.getLogger(__name__)

RecordT = TypeVar("RecordT")
ResultT = TypeVar("ResultT")
WRITE_ATTEMPTS = 3


def from_row(record_type: type[RecordT], row: sa.RowMapping, **decoded: Any) -> RecordT:
    """A record from a row whose columns carry its field names; ``decoded`` overrides the
    columns stored as JSON or integers that need converting."""
    columns = {f.name: row[f.name] for f in fields(record_type)}  # type: ignore[arg-type]
    return record_type(**(columns | decoded))


def loads_floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in json.loads(text))


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    memory = url.database in (None, "", ":memory:")
    if not memory:
        assert url.database is not None
        from pathlib import Path

        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(
        url,
        poolclass=StaticPool,  # one connection, as the lock below assumes
        connect_args={"check_same_thread": False, "timeout": 10.0},
    )

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling is off: the "begin" hook below says BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: sa.Connection) -> None:
        immediate = connection.get_execution_options().get("write", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _postgresql_engine(url: sa.URL) -> sa.Engine:
    return sa.create_engine(
        url,
        pool_size=5,
        max_overflow=10,
        pool_pre_ping=True,  # a connection the server dropped is replaced, not used
        pool_timeout=10,
        # Unreachable: fail fast with a 503 rather than hold the request.
        connect_args={"connect_timeout": 5},
    )


class SqlDatabase:
    """The engine and the transaction helpers the table classes build on."""

    def __init__(self, url: str, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        try:
            self.url = engine_url(url)
        except ValueError as error:
            raise StoreUnavailable(url, str(error)) from error
        self.where = shown(self.url)
        self.dialect = self.url.get_backend_name()
        # SQLite shares one connection between threads; PostgreSQL's pool hands each its own.
        self._lock: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if self.dialect == "sqlite" else contextlib.nullcontext()
        )
        self._schema_lock = threading.Lock()
        self._schema_ready = False
        try:
            self.engine = (
                _sqlite_engine(self.url)
                if self.dialect == "sqlite"
                else _postgresql_engine(self.url)
            )
        except (exc.SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(self.where, _reason(error)) from error
        try:
            self._ensure_schema()
        except StoreUnreachable as error:
            if not self.shared:  # the embedded file is the process's own: its failure too
                raise StoreUnavailable(self.where, error.reason) from error
            logger.warning(
                "the feedback store %s is unreachable (%s): starting without it; its schema "
                "is brought up to date on the first call that reaches it",
                self.where,
                error.reason,
            )
        except StoreError:
            raise
        except (exc.SQLAlchemyError, OSError) as error:
            raise StoreUnavailable(self.where, _reason(error)) from error

    def _ensure_schema(self) -> None:
        """Upgrade the schema unless done already; :class:`StoreUnreachable` when the
        server does not answer."""
        if self._schema_ready:
            return
        with self._schema_lock:
            if self._schema_ready:
                return
            try:
                with self._connection(write=True) as conn, conn.begin():
                    migrate.upgrade(conn, self.where)
            except exc.SQLAlchemyError as error:
                translated = _translated(error, self.where)
                if isinstance(translated, StoreUnreachable):
                    raise translated from error
                raise  # the callers say what else went wrong, where they are
            self._schema_ready = True

    @property
    def shared(self) -> bool:
        """Several processes may use this store at once (a PostgreSQL server)."""
        return self.dialect == "postgresql"

    @contextlib.contextmanager
    def _connection(self, *, write: bool = False) -> Iterator[sa.Connection]:
        with self._lock, self.engine.connect() as conn:
            yield conn.execution_options(write=write) if write else conn

    def _write(self, work: Callable[[sa.Connection], ResultT]) -> ResultT:
        """``work`` in one transaction, committed before this returns; run again when it
        lost a race on a unique key to another writer."""
        for attempt in range(1, WRITE_ATTEMPTS + 1):
            try:
                self._ensure_schema()
                with self._connection(write=True) as conn, conn.begin():
                    return work(conn)
            except exc.IntegrityError as error:
                if attempt == WRITE_ATTEMPTS:
                    raise StoreError(f"the store refused the write: {_reason(error)}") from error
            except exc.SQLAlchemyError as error:
                raise _translated(error, self.where) from error
        raise AssertionError("unreachable")

    def _read(self, work: Callable[[sa.Connection], ResultT], *, snapshot: bool = False) -> ResultT:
        """``work`` in one transaction; ``snapshot``: its statements all see the same
        committed data (PostgreSQL reads committed data per statement unless asked; a
        SQLite transaction reads one snapshot anyway)."""
        try:
            self._ensure_schema()
            with self._connection() as conn:
                if snapshot and self.shared:
                    conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    return work(conn)
        except exc.SQLAlchemyError as error:
            raise _translated(error, self.where) from error

    def _rows(self, statement: sa.Executable) -> list[sa.RowMapping]:
        return self._read(lambda conn: list(conn.execute(statement).mappings()))

    def ping(self) -> None:
        self._read(lambda conn: conn.execute(sa.text("SELECT 1")).scalar())

    def close(self) -> None:
        with self._lock:
            self.engine.dispose()

    def schema_version(self) -> int:
        revision = self._read(migrate.current_revision)
        return int(revision or 0)


def _reason(error: BaseException) -> str:
    """The driver's message without SQLAlchemy's statement dump and help link."""
    original = getattr(error, "orig", None)
    text = str(original if original is not None else error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _translated(error: exc.SQLAlchemyError, where: str) -> StoreError:
    if isinstance(error, exc.OperationalError | exc.InterfaceError) or (
        isinstance(error, exc.DBAPIError) and error.connection_invalidated
    ):
        return StoreUnreachable(where, _reason(error))
    return StoreError(f"the store failed: {_reason(error)}")
