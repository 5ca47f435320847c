"""The durable feedback store: operator labels, threshold versions, recalibration runs and
thresholds awaiting approval.

:class:`FeedbackStore` is the interface the service codes against; :class:`SqliteFeedbackStore`
is the single-replica backend. A backend for several replicas (PostgreSQL) implements the same
protocol: every multi-row change happens inside one transaction and version numbers are
allocated inside it, so the same method bodies translate to ``SELECT ... FOR UPDATE``.

Durability: SQLite runs in WAL mode with ``synchronous=FULL``, so a method that returns has
its transaction fsynced to the WAL; the API acknowledges a label only after that.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

LabelValue = Literal["normal", "anomaly"]
LabelSource = Literal["reading_id", "readings", "time_range"]
ThresholdSource = Literal["manifest", "recalibration", "approval", "manual", "rollback", "restore"]
PendingStatus = Literal["pending", "approved", "rejected", "superseded"]
RunOutcome = Literal["applied", "pending", "unchanged", "insufficient", "failed"]
MAX_ROW_ID = 2**63 - 1  # SQLite's largest INTEGER: ids and versions from clients stay below


class StoreError(Exception):
    """The store refused an operation; subclasses say why."""


class StoreUnavailable(StoreError):
    """The store's file can't be opened or set up; the message names the path."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(
            f"cannot open the feedback store {path}: {reason} (is its folder writable, the "
            "disk full, or another process holding it? ANOMALY_STORE_PATH sets where it lives)"
        )


class IdempotencyConflict(StoreError):
    """A client label id was reused for different content."""

    def __init__(self, client_label_id: str) -> None:
        self.client_label_id = client_label_id
        super().__init__(
            f"client label id {client_label_id!r} was already used for a different submission"
        )


class PendingNotFound(StoreError):
    def __init__(self, pending_id: int) -> None:
        self.pending_id = pending_id
        super().__init__(f"no pending threshold with id {pending_id}")


class PendingAlreadyDecided(StoreError):
    def __init__(self, pending_id: int, status: str) -> None:
        self.pending_id = pending_id
        self.status = status
        super().__init__(f"pending threshold {pending_id} is already {status}")


class ThresholdVersionNotFound(StoreError):
    def __init__(self, model: str, version: int) -> None:
        self.model = model
        self.version = version
        super().__init__(f"model {model!r} has no threshold version {version}")


@dataclass(frozen=True, slots=True)
class NewLabel:
    """A label as the API hands it to the store (errors already computed)."""

    model: str
    model_version: str
    label: LabelValue
    error: float
    sensor_errors: tuple[float, ...]
    threshold_value: float
    threshold_version: int
    source: LabelSource
    stream_id: str | None = None
    reading_id: str | None = None
    reading_time: float | None = None
    note: str | None = None
    # What the scorer decided for the reading: flagged readings (anomaly or alert) are the
    # ones operators are asked to review, so their labels are over-represented.
    # None: the error above the threshold in force (carried readings scored at labelling).
    scored_anomaly: bool | None = None
    scored_alert: bool = False


@dataclass(frozen=True, slots=True)
class StoredLabel:
    id: int
    submission_id: int
    model: str
    model_version: str
    label: LabelValue
    error: float
    sensor_errors: tuple[float, ...]
    threshold_value: float
    threshold_version: int
    source: LabelSource
    stream_id: str | None
    reading_id: str | None
    reading_time: float | None
    note: str | None
    author: str
    created_at: float
    scored_anomaly: bool = False
    scored_alert: bool = False


@dataclass(frozen=True, slots=True)
class Submission:
    """One feedback request as stored; ``replayed`` says it was found, not written, this time."""

    id: int
    client_label_id: str | None
    author: str
    created_at: float
    labels: tuple[StoredLabel, ...]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ThresholdVersion:
    model: str
    version: int
    model_version: str
    value: float
    baseline: float
    source: ThresholdSource
    reason: str
    author: str
    statistics: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class PendingThreshold:
    id: int
    model: str
    model_version: str
    candidate: float
    current_value: float
    current_version: int
    relative_change: float
    reason: str
    statistics: dict[str, Any]
    status: PendingStatus
    created_at: float
    decided_by: str | None
    decided_at: float | None
    applied_version: int | None


@dataclass(frozen=True, slots=True)
class RecalibrationRun:
    id: int
    model: str
    model_version: str
    trigger: str
    outcome: RunOutcome
    current_value: float
    candidate: float | None
    n_samples: int
    message: str
    statistics: dict[str, Any]
    threshold_version: int | None
    pending_id: int | None
    started_at: float
    finished_at: float


@dataclass(frozen=True, slots=True)
class LabelFilter:
    model: str | None = None
    label: LabelValue | None = None
    stream_id: str | None = None
    author: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True, slots=True)
class NormalSample:
    """Confirmed-normal errors in a rolling window, oldest first.

    ``flagged``: the reading was an anomaly or in an alert when scored. ``representative``:
    the label came with its neighbours (a time range or carried readings), not picked from
    the review queue, so its flagged share is the stream's own."""

    errors: tuple[float, ...]
    sensor_errors: tuple[tuple[float, ...], ...]
    label_ids: tuple[int, ...] = field(default=())
    flagged: tuple[bool, ...] = field(default=())
    representative: tuple[bool, ...] = field(default=())

    def __post_init__(self) -> None:
        """A store that does not know the flags: every label unflagged and representative."""
        if not self.flagged:
            object.__setattr__(self, "flagged", (False,) * len(self.errors))
        if not self.representative:
            object.__setattr__(self, "representative", (True,) * len(self.errors))


@runtime_checkable
class FeedbackStore(Protocol):
    """What the service needs from a durable store; implementations must be thread-safe."""

    def ping(self) -> None: ...

    def close(self) -> None: ...

    def schema_version(self) -> int: ...

    def submit_labels(
        self,
        labels: Sequence[NewLabel],
        *,
        author: str,
        client_label_id: str | None,
        content_hash: str,
    ) -> Submission: ...

    def find_submission(self, client_label_id: str) -> tuple[str, Submission] | None: ...

    def list_labels(
        self, filters: LabelFilter, *, limit: int, before_id: int | None = None
    ) -> list[StoredLabel]: ...

    def count_labels(self, filters: LabelFilter) -> int: ...

    def labels_after(self, model: str, after_id: int) -> tuple[int, int]: ...

    def normal_sample(
        self, model: str, model_version: str, *, since: float, limit: int
    ) -> NormalSample: ...

    def latest_threshold(self, model: str, model_version: str) -> ThresholdVersion | None: ...

    def threshold_history(self, model: str) -> list[ThresholdVersion]: ...

    def threshold_version(self, model: str, version: int) -> ThresholdVersion: ...

    def append_threshold(
        self,
        model: str,
        model_version: str,
        *,
        value: float,
        baseline: float,
        source: ThresholdSource,
        reason: str,
        author: str,
        statistics: dict[str, Any],
    ) -> ThresholdVersion: ...

    def ensure_threshold(
        self, model: str, model_version: str, *, value: float, reason: str
    ) -> ThresholdVersion: ...

    def labelled_readings(
        self, model: str, readings: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]: ...

    def open_pending(self, model: str) -> PendingThreshold | None: ...

    def get_pending(self, pending_id: int) -> PendingThreshold: ...

    def list_pending(
        self, model: str | None = None, status: PendingStatus | None = None
    ) -> list[PendingThreshold]: ...

    def create_pending(
        self,
        model: str,
        model_version: str,
        *,
        candidate: float,
        current: ThresholdVersion,
        relative_change: float,
        reason: str,
        statistics: dict[str, Any],
    ) -> PendingThreshold: ...

    def approve_pending(self, pending_id: int, *, author: str, reason: str) -> ThresholdVersion: ...

    def reject_pending(self, pending_id: int, *, author: str, reason: str) -> PendingThreshold: ...

    def record_run(
        self,
        *,
        model: str,
        model_version: str,
        trigger: str,
        outcome: RunOutcome,
        current_value: float,
        candidate: float | None,
        n_samples: int,
        message: str,
        statistics: dict[str, Any],
        threshold_version: int | None,
        pending_id: int | None,
        started_at: float,
    ) -> RecalibrationRun: ...

    def list_runs(self, model: str | None = None, *, limit: int = 50) -> list[RecalibrationRun]: ...


def content_fingerprint(payload: Any) -> str:
    """Stable hash of a request's content, to tell an idempotent replay from a conflicting reuse."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --- SQLite -------------------------------------------------------------------------------

Migration = Callable[[sqlite3.Connection], None]


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    """Statement by statement: ``executescript`` would commit the migration's transaction."""
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _migration_1_initial(conn: sqlite3.Connection) -> None:
    _run_script(
        conn,
        """
        CREATE TABLE submissions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            client_label_id TEXT UNIQUE,
            content_hash TEXT NOT NULL,
            author TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE labels (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            submission_id INTEGER NOT NULL REFERENCES submissions(id),
            model TEXT NOT NULL,
            model_version TEXT NOT NULL,
            label TEXT NOT NULL CHECK (label IN ('normal', 'anomaly')),
            error REAL NOT NULL,
            sensor_errors TEXT NOT NULL,
            threshold_value REAL NOT NULL,
            threshold_version INTEGER NOT NULL,
            source TEXT NOT NULL,
            stream_id TEXT,
            reading_id TEXT,
            reading_time REAL,
            note TEXT,
            author TEXT NOT NULL,
            created_at REAL NOT NULL
        );
        CREATE TABLE threshold_versions (
            model TEXT NOT NULL,
            version INTEGER NOT NULL,
            model_version TEXT NOT NULL,
            value REAL NOT NULL CHECK (value > 0),
            baseline REAL NOT NULL CHECK (baseline > 0),
            source TEXT NOT NULL,
            reason TEXT NOT NULL,
            author TEXT NOT NULL,
            statistics TEXT NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY (model, version)
        );
        CREATE TABLE pending_thresholds (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model TEXT NOT NULL,
            model_version TEXT NOT NULL,
            candidate REAL NOT NULL CHECK (candidate > 0),
            current_value REAL NOT NULL,
            current_version INTEGER NOT NULL,
            relative_change REAL NOT NULL,
            reason TEXT NOT NULL,
            statistics TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            created_at REAL NOT NULL,
            decided_by TEXT,
            decided_at REAL,
            applied_version INTEGER
        );
        CREATE TABLE recalibration_runs (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model TEXT NOT NULL,
            model_version TEXT NOT NULL,
            trigger TEXT NOT NULL,
            outcome TEXT NOT NULL,
            current_value REAL NOT NULL,
            candidate REAL,
            n_samples INTEGER NOT NULL,
            message TEXT NOT NULL,
            statistics TEXT NOT NULL,
            threshold_version INTEGER,
            pending_id INTEGER,
            started_at REAL NOT NULL,
            finished_at REAL NOT NULL
        );
        """,
    )


def _migration_2_indexes(conn: sqlite3.Connection) -> None:
    """The rolling-window and listing queries filter on model, label and time."""
    _run_script(
        conn,
        """
        CREATE INDEX labels_model_label_time ON labels (model, label, created_at);
        CREATE INDEX labels_reading ON labels (model, reading_id);
        CREATE INDEX labels_stream_time ON labels (stream_id, created_at);
        CREATE INDEX pending_model_status ON pending_thresholds (model, status);
        CREATE INDEX runs_model ON recalibration_runs (model, id);
        """,
    )


def _migration_3_scored_flags(conn: sqlite3.Connection) -> None:
    """What the scorer decided for each labelled reading. Older labels: the anomaly flag
    is recomputed from their stored error and threshold; whether an alert was on is not
    known and taken as off."""
    _run_script(
        conn,
        """
        ALTER TABLE labels ADD COLUMN scored_anomaly INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE labels ADD COLUMN scored_alert INTEGER NOT NULL DEFAULT 0;
        UPDATE labels SET scored_anomaly = (error > threshold_value);
        """,
    )


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "initial schema", _migration_1_initial),
    (2, "indexes for rolling windows and listings", _migration_2_indexes),
    (3, "anomaly and alert flags of labelled readings", _migration_3_scored_flags),
)


RecordT = TypeVar("RecordT")


def _from_row(record_type: type[RecordT], row: sqlite3.Row, **decoded: Any) -> RecordT:
    """A record from a row whose columns carry its field names; ``decoded`` overrides the
    columns stored as JSON or integers that need converting."""
    columns = {f.name: row[f.name] for f in fields(record_type)}  # type: ignore[arg-type]
    return record_type(**(columns | decoded))


def _loads_floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in json.loads(text))


class SqliteFeedbackStore:
    """SQLite backend: one connection guarded by a lock (SQLite serialises writers anyway)."""

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

    # --- plumbing ---------------------------------------------------------------------

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

    # --- labels -----------------------------------------------------------------------

    @staticmethod
    def _label(row: sqlite3.Row) -> StoredLabel:
        return _from_row(
            StoredLabel,
            row,
            sensor_errors=_loads_floats(row["sensor_errors"]),
            scored_anomaly=bool(row["scored_anomaly"]),
            scored_alert=bool(row["scored_alert"]),
        )

    def _load_submission(
        self, conn: sqlite3.Connection, row: sqlite3.Row, *, replayed: bool
    ) -> Submission:
        labels = conn.execute(
            "SELECT * FROM labels WHERE submission_id = ? ORDER BY id", (row["id"],)
        ).fetchall()
        return Submission(
            id=row["id"],
            client_label_id=row["client_label_id"],
            author=row["author"],
            created_at=row["created_at"],
            labels=tuple(self._label(r) for r in labels),
            replayed=replayed,
        )

    def submit_labels(
        self,
        labels: Sequence[NewLabel],
        *,
        author: str,
        client_label_id: str | None,
        content_hash: str,
    ) -> Submission:
        """Write a submission and its labels in one transaction, or replay the one already
        written under the same client label id (:class:`IdempotencyConflict` if it differs)."""
        if not labels:
            raise StoreError("a submission needs at least one label")
        now = self._clock()
        with self._transaction() as conn:
            if client_label_id is not None:
                existing = conn.execute(
                    "SELECT * FROM submissions WHERE client_label_id = ?", (client_label_id,)
                ).fetchone()
                if existing is not None:
                    if existing["content_hash"] != content_hash:
                        raise IdempotencyConflict(client_label_id)
                    return self._load_submission(conn, existing, replayed=True)
            cursor = conn.execute(
                "INSERT INTO submissions (client_label_id, content_hash, author, created_at) "
                "VALUES (?, ?, ?, ?)",
                (client_label_id, content_hash, author, now),
            )
            submission_id = cursor.lastrowid
            conn.executemany(
                "INSERT INTO labels (submission_id, model, model_version, label, error, "
                "sensor_errors, threshold_value, threshold_version, source, stream_id, "
                "reading_id, reading_time, note, author, created_at, scored_anomaly, "
                "scored_alert) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        submission_id,
                        lab.model,
                        lab.model_version,
                        lab.label,
                        float(lab.error),
                        json.dumps([float(v) for v in lab.sensor_errors]),
                        float(lab.threshold_value),
                        lab.threshold_version,
                        lab.source,
                        lab.stream_id,
                        lab.reading_id,
                        lab.reading_time,
                        lab.note,
                        author,
                        now,
                        int(
                            lab.error > lab.threshold_value
                            if lab.scored_anomaly is None
                            else lab.scored_anomaly
                        ),
                        int(lab.scored_alert),
                    )
                    for lab in labels
                ],
            )
            row = conn.execute(
                "SELECT * FROM submissions WHERE id = ?", (submission_id,)
            ).fetchone()
            return self._load_submission(conn, row, replayed=False)

    def find_submission(self, client_label_id: str) -> tuple[str, Submission] | None:
        """The stored submission and its content hash, so a replay can skip re-scoring."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM submissions WHERE client_label_id = ?", (client_label_id,)
            ).fetchone()
            if row is None:
                return None
            return row["content_hash"], self._load_submission(self._conn, row, replayed=True)

    @staticmethod
    def _where(filters: LabelFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("model", filters.model),
            ("label", filters.label),
            ("stream_id", filters.stream_id),
            ("author", filters.author),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if filters.since is not None:
            clauses.append("created_at >= ?")
            params.append(filters.since)
        if filters.until is not None:
            clauses.append("created_at < ?")
            params.append(filters.until)
        return (" AND ".join(clauses) or "1 = 1"), params

    def list_labels(
        self, filters: LabelFilter, *, limit: int, before_id: int | None = None
    ) -> list[StoredLabel]:
        """Newest first; page with ``before_id`` = the last id of the previous page."""
        where, params = self._where(filters)
        if before_id is not None:
            where += " AND id < ?"
            params.append(before_id)
        rows = self._query(
            f"SELECT * FROM labels WHERE {where} ORDER BY id DESC LIMIT ?", [*params, limit]
        )
        return [self._label(r) for r in rows]

    def count_labels(self, filters: LabelFilter) -> int:
        where, params = self._where(filters)
        return int(self._query(f"SELECT COUNT(*) FROM labels WHERE {where}", params)[0][0])

    def labels_after(self, model: str, after_id: int) -> tuple[int, int]:
        """How many labels of ``model`` arrived after ``after_id``, and the newest id."""
        row = self._query(
            "SELECT COUNT(*), MAX(id) FROM labels WHERE model = ? AND id > ?", (model, after_id)
        )[0]
        return int(row[0]), int(row[1] if row[1] is not None else after_id)

    def normal_sample(
        self, model: str, model_version: str, *, since: float, limit: int
    ) -> NormalSample:
        """The newest ``limit`` confirmed normals since ``since`` for this model version:
        one vote per reading (its latest label), none for a reading anyone confirmed as an
        anomaly."""
        rows = self._query(
            """
            SELECT id, error, sensor_errors, scored_anomaly, scored_alert, source
            FROM labels AS n
            WHERE n.model = ? AND n.model_version = ? AND n.label = 'normal'
              AND n.created_at >= ?
              AND (n.reading_id IS NULL OR (
                  NOT EXISTS (
                      SELECT 1 FROM labels AS a
                      WHERE a.model = n.model AND a.reading_id = n.reading_id
                        AND a.stream_id IS n.stream_id AND a.label = 'anomaly')
                  AND n.id = (
                      SELECT MAX(d.id) FROM labels AS d
                      WHERE d.model = n.model AND d.reading_id = n.reading_id
                        AND d.stream_id IS n.stream_id)))
            ORDER BY id DESC LIMIT ?
            """,
            (model, model_version, since, limit),
        )
        rows.reverse()
        return NormalSample(
            errors=tuple(float(r["error"]) for r in rows),
            sensor_errors=tuple(_loads_floats(r["sensor_errors"]) for r in rows),
            label_ids=tuple(int(r["id"]) for r in rows),
            flagged=tuple(bool(r["scored_anomaly"] or r["scored_alert"]) for r in rows),
            representative=tuple(r["source"] != "reading_id" for r in rows),
        )

    def labelled_readings(
        self, model: str, readings: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Which of these (stream id, reading id) pairs already carry a label (the review
        queue skips them). A pair, not an id: clients may reuse their ids across streams."""
        wanted = set(readings)
        found: set[tuple[str, str]] = set()
        ids = list(dict.fromkeys(reading_id for _, reading_id in readings))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._query(
                "SELECT DISTINCT stream_id, reading_id FROM labels "
                f"WHERE model = ? AND reading_id IN ({marks})",
                [model, *chunk],
            )
            found.update((str(r[0]), str(r[1])) for r in rows)
        return found & wanted

    # --- thresholds -------------------------------------------------------------------

    @staticmethod
    def _threshold(row: sqlite3.Row) -> ThresholdVersion:
        return _from_row(ThresholdVersion, row, statistics=json.loads(row["statistics"]))

    def latest_threshold(self, model: str, model_version: str) -> ThresholdVersion | None:
        rows = self._query(
            "SELECT * FROM threshold_versions WHERE model = ? AND model_version = ? "
            "ORDER BY version DESC LIMIT 1",
            (model, model_version),
        )
        return self._threshold(rows[0]) if rows else None

    def threshold_history(self, model: str) -> list[ThresholdVersion]:
        rows = self._query(
            "SELECT * FROM threshold_versions WHERE model = ? ORDER BY version", (model,)
        )
        return [self._threshold(r) for r in rows]

    def threshold_version(self, model: str, version: int) -> ThresholdVersion:
        rows = self._query(
            "SELECT * FROM threshold_versions WHERE model = ? AND version = ?", (model, version)
        )
        if not rows:
            raise ThresholdVersionNotFound(model, version)
        return self._threshold(rows[0])

    def _append_threshold(
        self,
        conn: sqlite3.Connection,
        model: str,
        model_version: str,
        *,
        value: float,
        baseline: float,
        source: ThresholdSource,
        reason: str,
        author: str,
        statistics: dict[str, Any],
        keep_pending: int | None = None,
    ) -> ThresholdVersion:
        """New version = max + 1 inside the caller's transaction. Open pendings computed
        against the old threshold are superseded: approving them later would be stale."""
        if not value > 0:
            raise StoreError(f"threshold for {model} must be positive, got {value}")
        now = self._clock()
        current = conn.execute(
            "SELECT MAX(version) FROM threshold_versions WHERE model = ?", (model,)
        ).fetchone()[0]
        version = int(current or 0) + 1
        conn.execute(
            "INSERT INTO threshold_versions (model, version, model_version, value, baseline, "
            "source, reason, author, statistics, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                model,
                version,
                model_version,
                float(value),
                float(baseline),
                source,
                reason,
                author,
                json.dumps(statistics, sort_keys=True),
                now,
            ),
        )
        conn.execute(
            "UPDATE pending_thresholds SET status = 'superseded', decided_at = ?, "
            "decided_by = ? WHERE model = ? AND status = 'pending' AND id IS NOT ?",
            (now, author, model, keep_pending),
        )
        row = conn.execute(
            "SELECT * FROM threshold_versions WHERE model = ? AND version = ?", (model, version)
        ).fetchone()
        return self._threshold(row)

    def append_threshold(
        self,
        model: str,
        model_version: str,
        *,
        value: float,
        baseline: float,
        source: ThresholdSource,
        reason: str,
        author: str,
        statistics: dict[str, Any],
    ) -> ThresholdVersion:
        with self._transaction() as conn:
            return self._append_threshold(
                conn,
                model,
                model_version,
                value=value,
                baseline=baseline,
                source=source,
                reason=reason,
                author=author,
                statistics=statistics,
            )

    def ensure_threshold(
        self, model: str, model_version: str, *, value: float, reason: str
    ) -> ThresholdVersion:
        """The latest version for this model version, or the manifest's threshold persisted
        as a new version when this model version has none yet (first start, new artifact).

        Pinning back to an older model version whose latest threshold is not the model's
        latest appends that value again (source "restore"): the version in force only ever
        increases, so dashboards and clients never see it go backwards."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT * FROM threshold_versions WHERE model = ? AND model_version = ? "
                "ORDER BY version DESC LIMIT 1",
                (model, model_version),
            ).fetchone()
            if row is not None:
                newest = conn.execute(
                    "SELECT MAX(version) FROM threshold_versions WHERE model = ?", (model,)
                ).fetchone()[0]
                if row["version"] == newest:
                    return self._threshold(row)
                return self._append_threshold(
                    conn,
                    model,
                    model_version,
                    value=row["value"],
                    baseline=row["baseline"],
                    source="restore",
                    reason=f"{model}/{model_version} served again: the value of its latest "
                    f"threshold version {row['version']} is back in force",
                    author="system",
                    statistics={"restored_version": row["version"]},
                )
            return self._append_threshold(
                conn,
                model,
                model_version,
                value=value,
                baseline=value,
                source="manifest",
                reason=reason,
                author="system",
                statistics={},
            )

    # --- pending approvals ------------------------------------------------------------

    @staticmethod
    def _pending(row: sqlite3.Row) -> PendingThreshold:
        return _from_row(PendingThreshold, row, statistics=json.loads(row["statistics"]))

    def open_pending(self, model: str) -> PendingThreshold | None:
        rows = self._query(
            "SELECT * FROM pending_thresholds WHERE model = ? AND status = 'pending' "
            "ORDER BY id DESC LIMIT 1",
            (model,),
        )
        return self._pending(rows[0]) if rows else None

    def get_pending(self, pending_id: int) -> PendingThreshold:
        rows = self._query("SELECT * FROM pending_thresholds WHERE id = ?", (pending_id,))
        if not rows:
            raise PendingNotFound(pending_id)
        return self._pending(rows[0])

    def list_pending(
        self, model: str | None = None, status: PendingStatus | None = None
    ) -> list[PendingThreshold]:
        clauses, params = ["1 = 1"], []
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        rows = self._query(
            f"SELECT * FROM pending_thresholds WHERE {' AND '.join(clauses)} ORDER BY id DESC",
            params,
        )
        return [self._pending(r) for r in rows]

    def create_pending(
        self,
        model: str,
        model_version: str,
        *,
        candidate: float,
        current: ThresholdVersion,
        relative_change: float,
        reason: str,
        statistics: dict[str, Any],
    ) -> PendingThreshold:
        """One open pending per model: a newer candidate supersedes the older one."""
        now = self._clock()
        with self._transaction() as conn:
            conn.execute(
                "UPDATE pending_thresholds SET status = 'superseded', decided_at = ?, "
                "decided_by = 'system' WHERE model = ? AND status = 'pending'",
                (now, model),
            )
            cursor = conn.execute(
                "INSERT INTO pending_thresholds (model, model_version, candidate, current_value, "
                "current_version, relative_change, reason, statistics, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                (
                    model,
                    model_version,
                    float(candidate),
                    current.value,
                    current.version,
                    float(relative_change),
                    reason,
                    json.dumps(statistics, sort_keys=True),
                    now,
                ),
            )
            row = conn.execute(
                "SELECT * FROM pending_thresholds WHERE id = ?", (cursor.lastrowid,)
            ).fetchone()
            return self._pending(row)

    def _open_pending_row(self, conn: sqlite3.Connection, pending_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM pending_thresholds WHERE id = ?", (pending_id,)
        ).fetchone()
        if row is None:
            raise PendingNotFound(pending_id)
        if row["status"] != "pending":
            raise PendingAlreadyDecided(pending_id, row["status"])
        return row

    def approve_pending(self, pending_id: int, *, author: str, reason: str) -> ThresholdVersion:
        """Apply the candidate as a new version and close the pending, atomically."""
        with self._transaction() as conn:
            row = self._open_pending_row(conn, pending_id)
            current = conn.execute(
                "SELECT baseline FROM threshold_versions WHERE model = ? AND version = ?",
                (row["model"], row["current_version"]),
            ).fetchone()
            statistics = json.loads(row["statistics"])
            statistics["pending_id"] = pending_id
            version = self._append_threshold(
                conn,
                row["model"],
                row["model_version"],
                value=row["candidate"],
                baseline=current["baseline"],
                source="approval",
                reason=reason or row["reason"],
                author=author,
                statistics=statistics,
                keep_pending=pending_id,
            )
            conn.execute(
                "UPDATE pending_thresholds SET status = 'approved', decided_by = ?, "
                "decided_at = ?, applied_version = ? WHERE id = ?",
                (author, self._clock(), version.version, pending_id),
            )
            return version

    def reject_pending(self, pending_id: int, *, author: str, reason: str) -> PendingThreshold:
        with self._transaction() as conn:
            self._open_pending_row(conn, pending_id)
            conn.execute(
                "UPDATE pending_thresholds SET status = 'rejected', decided_by = ?, "
                "decided_at = ?, reason = reason || ' | rejected: ' || ? WHERE id = ?",
                (author, self._clock(), reason, pending_id),
            )
            row = conn.execute(
                "SELECT * FROM pending_thresholds WHERE id = ?", (pending_id,)
            ).fetchone()
            return self._pending(row)

    # --- recalibration runs -----------------------------------------------------------

    @staticmethod
    def _run(row: sqlite3.Row) -> RecalibrationRun:
        return _from_row(RecalibrationRun, row, statistics=json.loads(row["statistics"]))

    def record_run(
        self,
        *,
        model: str,
        model_version: str,
        trigger: str,
        outcome: RunOutcome,
        current_value: float,
        candidate: float | None,
        n_samples: int,
        message: str,
        statistics: dict[str, Any],
        threshold_version: int | None,
        pending_id: int | None,
        started_at: float,
    ) -> RecalibrationRun:
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO recalibration_runs (model, model_version, trigger, outcome, "
                "current_value, candidate, n_samples, message, statistics, threshold_version, "
                "pending_id, started_at, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model,
                    model_version,
                    trigger,
                    outcome,
                    current_value,
                    candidate,
                    n_samples,
                    message,
                    json.dumps(statistics, sort_keys=True),
                    threshold_version,
                    pending_id,
                    started_at,
                    self._clock(),
                ),
            )
            row = conn.execute(
                "SELECT * FROM recalibration_runs WHERE id = ?", (cursor.lastrowid,)
            ).fetchone()
            return self._run(row)

    def list_runs(self, model: str | None = None, *, limit: int = 50) -> list[RecalibrationRun]:
        if model is None:
            rows = self._query(
                "SELECT * FROM recalibration_runs ORDER BY id DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._query(
                "SELECT * FROM recalibration_runs WHERE model = ? ORDER BY id DESC LIMIT ?",
                (model, limit),
            )
        return [self._run(r) for r in rows]
