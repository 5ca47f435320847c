"""Maintenance windows with their audit trail, and why a label is kept out of learning.

- ``maintenance_windows``: a window over a model, a stream or a stream prefix, with its
  modes; checks refuse a window with no mode, with both a stream and a prefix, or ending
  before it starts. Ending one early sets ``ended_at`` (rows are never deleted).
- ``maintenance_window_events``: one audit line per change, written in its transaction.
- ``labels.excluded_from_learning``: NULL for every existing label, so all of them keep
  being learned from.
- on PostgreSQL, the database announces each committed change of a window (channel
  ``anomaly_windows``): every replica reloads the windows it matches readings against.

Self-contained: nothing written before depends on it.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "maintenance_windows",
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
        sa.CheckConstraint(
            "suppress_alerts = 1 OR exclude_from_learning = 1", name="maintenance_windows_mode"
        ),
        sa.CheckConstraint(
            "stream_id IS NULL OR stream_prefix IS NULL", name="maintenance_windows_scope"
        ),
        sa.CheckConstraint(
            "ends_at IS NULL OR ends_at > starts_at", name="maintenance_windows_end"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("maintenance_windows_open", "maintenance_windows", ["ended_at", "ends_at"])
    op.create_table(
        "maintenance_window_events",
        sa.Column("id", RowId, primary_key=True, autoincrement=True),
        sa.Column("window_id", RowId, sa.ForeignKey("maintenance_windows.id"), nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("author", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.Float, nullable=False),
        sa.CheckConstraint(
            "action IN ('created', 'ended')", name="maintenance_window_events_action"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("maintenance_window_events_window", "maintenance_window_events", ["window_id"])
    op.add_column("labels", sa.Column("excluded_from_learning", sa.Text))

    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        op.execute(
            "CREATE TRIGGER maintenance_windows_notify AFTER INSERT OR UPDATE "
            "ON maintenance_windows FOR EACH STATEMENT "
            "EXECUTE FUNCTION anomaly_notify_windows()"
        )


# Delivered at commit, and only if it commits (as revision 0004's).
NOTIFY_FUNCTION = """
CREATE FUNCTION anomaly_notify_windows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('anomaly_windows', '');
    RETURN NULL;
END $$;
"""


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER maintenance_windows_notify ON maintenance_windows")
        op.execute("DROP FUNCTION anomaly_notify_windows()")
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("excluded_from_learning")
    op.drop_index("maintenance_window_events_window", "maintenance_window_events")
    op.drop_table("maintenance_window_events")
    op.drop_index("maintenance_windows_open", "maintenance_windows")
    op.drop_table("maintenance_windows")
