"""Initial schema: submissions, labels, threshold versions, pending thresholds, runs.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "submissions",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("client_label_id", sa.Text, unique=True),
        sa.Column("content_hash", sa.Text, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "labels",
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
        sa.CheckConstraint("label IN ('normal', 'anomaly')", name="labels_label"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "threshold_versions",
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
        sa.CheckConstraint("value > 0", name="threshold_versions_value"),
        sa.CheckConstraint("baseline > 0", name="threshold_versions_baseline"),
    )
    op.create_table(
        "pending_thresholds",
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
        sa.CheckConstraint("candidate > 0", name="pending_thresholds_candidate"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "recalibration_runs",
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


def downgrade() -> None:
    for table in (
        "recalibration_runs",
        "pending_thresholds",
        "threshold_versions",
        "labels",
        "submissions",
    ):
        op.drop_table(table)
