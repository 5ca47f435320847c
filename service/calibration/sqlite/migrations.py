"""The SQLite schema, as numbered migrations applied in order inside one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

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


def _migration_4_maintenance_windows(conn: sqlite3.Connection) -> None:
    """Maintenance windows with their audit trail, and why a label is kept out of learning
    (NULL: it is learned from). Self-contained: nothing else in the schema depends on it."""
    _run_script(
        conn,
        """
        CREATE TABLE maintenance_windows (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            model TEXT,
            stream_id TEXT,
            stream_prefix TEXT,
            starts_at REAL NOT NULL,
            ends_at REAL,
            suppress_alerts INTEGER NOT NULL,
            exclude_from_learning INTEGER NOT NULL,
            reason TEXT NOT NULL,
            author TEXT NOT NULL,
            created_at REAL NOT NULL,
            ended_at REAL,
            ended_by TEXT,
            end_reason TEXT,
            CHECK (suppress_alerts = 1 OR exclude_from_learning = 1),
            CHECK (stream_id IS NULL OR stream_prefix IS NULL),
            CHECK (ends_at IS NULL OR ends_at > starts_at)
        );
        CREATE INDEX maintenance_windows_open ON maintenance_windows (ended_at, ends_at);
        CREATE TABLE maintenance_window_events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            window_id INTEGER NOT NULL REFERENCES maintenance_windows(id),
            action TEXT NOT NULL CHECK (action IN ('created', 'ended')),
            author TEXT NOT NULL,
            reason TEXT NOT NULL,
            at REAL NOT NULL
        );
        CREATE INDEX maintenance_window_events_window ON maintenance_window_events (window_id);
        ALTER TABLE labels ADD COLUMN excluded_from_learning TEXT;
        """,
    )


MIGRATIONS: tuple[tuple[int, str, Migration], ...] = (
    (1, "initial schema", _migration_1_initial),
    (2, "indexes for rolling windows and listings", _migration_2_indexes),
    (3, "anomaly and alert flags of labelled readings", _migration_3_scored_flags),
    (4, "maintenance windows and labels kept out of learning", _migration_4_maintenance_windows),
)
