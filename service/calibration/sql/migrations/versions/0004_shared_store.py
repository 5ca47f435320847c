"""Constraints that hold across replicas sharing one store.

- ``reading_votes``: one row per labelled reading naming the label that counts, so one
  vote per reading is a primary key, not a query every reader must get right.
- ``threshold_heads``: the newest version number per model (0 before its first), the row
  writers lock before they read, to allocate the next one.
- at most one open pending threshold per model: a partial unique index.
- on PostgreSQL, the database announces each committed threshold version (channel
  ``anomaly_thresholds``, payload the model) and each batch of labels (``anomaly_labels``,
  payload the count), whoever wrote them: replicas listen (service/calibration/replicas.py).

Existing rows are carried over: the votes from the labels, the heads from the versions.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reading_votes",
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("stream_key", sa.Text, primary_key=True),
        sa.Column("reading_id", sa.Text, primary_key=True),
        sa.Column("latest_label_id", RowId, nullable=False),
        sa.Column("contested", sa.Integer, nullable=False),
    )
    op.execute(
        "INSERT INTO reading_votes (model, stream_key, reading_id, latest_label_id, contested) "
        "SELECT model, COALESCE(stream_id, ''), reading_id, MAX(id), "
        "MAX(CASE WHEN label = 'anomaly' THEN 1 ELSE 0 END) "
        "FROM labels WHERE reading_id IS NOT NULL "
        "GROUP BY model, COALESCE(stream_id, ''), reading_id"
    )
    op.create_table(
        "threshold_heads",
        sa.Column("model", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, nullable=False),
        sa.CheckConstraint("version >= 0", name="threshold_heads_version"),
    )
    op.execute(
        "INSERT INTO threshold_heads (model, version) "
        "SELECT model, MAX(version) FROM threshold_versions GROUP BY model"
    )
    # A store written by one process never held two open pendings of a model; should one
    # exist, the older ones are superseded, as that process would have done.
    op.execute(
        "UPDATE pending_thresholds SET status = 'superseded' WHERE status = 'pending' "
        "AND id < (SELECT MAX(p.id) FROM pending_thresholds AS p "
        "WHERE p.model = pending_thresholds.model AND p.status = 'pending')"
    )
    op.create_index(
        "pending_one_open",
        "pending_thresholds",
        ["model"],
        unique=True,
        sqlite_where=sa.text("status = 'pending'"),
        postgresql_where=sa.text("status = 'pending'"),
    )

    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTIONS)
        op.execute(
            "CREATE TRIGGER threshold_versions_notify AFTER INSERT ON threshold_versions "
            "FOR EACH ROW EXECUTE FUNCTION anomaly_notify_threshold()"
        )
        op.execute(
            "CREATE TRIGGER labels_notify AFTER INSERT ON labels "
            "REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT "
            "EXECUTE FUNCTION anomaly_notify_labels()"
        )


# Notifications are delivered at commit, and only if it commits.
NOTIFY_FUNCTIONS = """
CREATE FUNCTION anomaly_notify_threshold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('anomaly_thresholds', NEW.model);
    RETURN NULL;
END $$;
CREATE FUNCTION anomaly_notify_labels() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('anomaly_labels', (SELECT count(*) FROM inserted)::text);
    RETURN NULL;
END $$;
"""


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER labels_notify ON labels")
        op.execute("DROP TRIGGER threshold_versions_notify ON threshold_versions")
        op.execute("DROP FUNCTION anomaly_notify_labels()")
        op.execute("DROP FUNCTION anomaly_notify_threshold()")
    op.drop_index("pending_one_open", "pending_thresholds")
    op.drop_table("threshold_heads")
    op.drop_table("reading_votes")
