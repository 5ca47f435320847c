"""The store's tables as SQLAlchemy Core objects: what the queries are written against.

The schema itself is made and changed only by the Alembic revisions in ``migrations/``;
this module must describe the schema the newest revision leaves (a test compares them).
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# 64-bit ids on PostgreSQL; SQLite's INTEGER PRIMARY KEY is its 64-bit rowid already.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

submissions = sa.Table(
    "submissions",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("client_label_id", sa.Text, unique=True),
    sa.Column("content_hash", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)

labels = sa.Table(
    "labels",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("submission_id", RowId, sa.ForeignKey("submissions.id"), nullable=False),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("label", sa.Text, nullable=False),
    sa.Column("error", sa.Float, nullable=False),
    sa.Column("sensor_errors", sa.Text, nullable=False),
    sa.Column("threshold_value", sa.Float, nullable=False),
    sa.Column("threshold_version", sa.Integer, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("stream_id", sa.Text),
    sa.Column("reading_id", sa.Text),
    sa.Column("reading_time", sa.Float),
    sa.Column("note", sa.Text),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("scored_anomaly", sa.Integer, nullable=False, server_default="0"),
    sa.Column("scored_alert", sa.Integer, nullable=False, server_default="0"),
    # Why the label is kept out of learning (a maintenance window, the learning freeze);
    # NULL: it is learned from.
    sa.Column("excluded_from_learning", sa.Text),
    # The reading's error smoothed as its stream was, in the error's units (NULL: labelled
    # before revision 0007).
    sa.Column("score", sa.Float),
    sqlite_autoincrement=True,
)

# One vote per reading: the row of (model, stream, reading id) names the label that counts
# (the latest) and whether anyone confirmed the reading as an anomaly (then none counts).
# Its primary key makes concurrent labellers, on any replica, update one row.
reading_votes = sa.Table(
    "reading_votes",
    metadata,
    sa.Column("model", sa.Text, primary_key=True),
    sa.Column("stream_key", sa.Text, primary_key=True),  # the stream id, '' for none
    sa.Column("reading_id", sa.Text, primary_key=True),
    sa.Column("latest_label_id", RowId, nullable=False),
    sa.Column("contested", sa.Integer, nullable=False),
)

threshold_versions = sa.Table(
    "threshold_versions",
    metadata,
    sa.Column("model", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("value", sa.Float, nullable=False),
    sa.Column("baseline", sa.Float, nullable=False),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("statistics", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
)

# The newest version number of each model: writers lock this row, so versions are
# allocated one at a time across replicas, each exactly one above the last.
threshold_heads = sa.Table(
    "threshold_heads",
    metadata,
    sa.Column("model", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

pending_thresholds = sa.Table(
    "pending_thresholds",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("candidate", sa.Float, nullable=False),
    sa.Column("current_value", sa.Float, nullable=False),
    sa.Column("current_version", sa.Integer, nullable=False),
    sa.Column("relative_change", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("statistics", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, server_default="pending"),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("decided_by", sa.Text),
    sa.Column("decided_at", sa.Float),
    sa.Column("applied_version", sa.Integer),
    sqlite_autoincrement=True,
)

recalibration_runs = sa.Table(
    "recalibration_runs",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("model", sa.Text, nullable=False),
    sa.Column("model_version", sa.Text, nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False),
    sa.Column("current_value", sa.Float, nullable=False),
    sa.Column("candidate", sa.Float),
    sa.Column("n_samples", sa.Integer, nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("statistics", sa.Text, nullable=False),
    sa.Column("threshold_version", sa.Integer),
    sa.Column("pending_id", RowId),
    sa.Column("started_at", sa.Float, nullable=False),
    sa.Column("finished_at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)

maintenance_windows = sa.Table(
    "maintenance_windows",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("model", sa.Text),
    sa.Column("stream_id", sa.Text),
    sa.Column("stream_prefix", sa.Text),
    sa.Column("starts_at", sa.Float, nullable=False),
    sa.Column("ends_at", sa.Float),
    sa.Column("suppress_alerts", sa.Integer, nullable=False),
    sa.Column("exclude_from_learning", sa.Integer, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("created_at", sa.Float, nullable=False),
    sa.Column("ended_at", sa.Float),
    sa.Column("ended_by", sa.Text),
    sa.Column("end_reason", sa.Text),
    sqlite_autoincrement=True,
)

# A window's audit trail: one line per change, written in the change's transaction.
maintenance_window_events = sa.Table(
    "maintenance_window_events",
    metadata,
    sa.Column("id", RowId, primary_key=True, autoincrement=True),
    sa.Column("window_id", RowId, sa.ForeignKey("maintenance_windows.id"), nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.Float, nullable=False),
    sqlite_autoincrement=True,
)
