"""Label notifications that PostgreSQL never folds together.

A submission is written in one transaction, its labels by as many INSERT statements as
insert pages (SQLAlchemy sends at most 1000 rows each). Revision 0004's trigger announced
each statement's count alone, and PostgreSQL delivers identical notifications of one
transaction once: a submission of 2,500 labels announced 1,500, so the leader's label
trigger fired late or not at all. Each statement now announces ``"<count> <first id>"``,
distinct because label ids are. Replicas read both forms
(:func:`service.calibration.replicas.announced_labels`).

PostgreSQL only; nothing changes on SQLite.

Revision ID: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

DISTINCT = """
CREATE OR REPLACE FUNCTION anomaly_notify_labels() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(
        'anomaly_labels',
        (SELECT count(*)::text || ' ' || coalesce(min(id), 0)::text FROM inserted)
    );
    RETURN NULL;
END $$;
"""

# Revision 0004's function, as it was.
COUNT_ONLY = """
CREATE OR REPLACE FUNCTION anomaly_notify_labels() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('anomaly_labels', (SELECT count(*) FROM inserted)::text);
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DISTINCT)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(COUNT_ONLY)
