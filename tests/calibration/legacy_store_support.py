"""A SQLite store as the service wrote it before its migrations moved to Alembic: the
numbered migrations of that build, verbatim, to make fixtures the upgrade must carry over."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

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


def write_legacy_store(path: Path, *, upto: int = len(MIGRATIONS)) -> sqlite3.Connection:
    """A store file with the first ``upto`` old migrations applied and recorded, open for
    the caller to add rows (commit and close it before the new code opens the file)."""
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
        "applied_at REAL NOT NULL)"
    )
    for number, name, migrate in MIGRATIONS[:upto]:
        migrate(conn)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (number, name))
    conn.commit()
    return conn
