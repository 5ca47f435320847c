"""What the scorer decided for each labelled reading.

Older labels: the anomaly flag is recomputed from their stored error and threshold; whether
an alert was on is not known and taken as off.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "labels", sa.Column("scored_anomaly", sa.Integer, nullable=False, server_default="0")
    )
    op.add_column(
        "labels", sa.Column("scored_alert", sa.Integer, nullable=False, server_default="0")
    )
    op.execute(
        "UPDATE labels SET scored_anomaly = CASE WHEN error > threshold_value THEN 1 ELSE 0 END"
    )


def downgrade() -> None:
    with op.batch_alter_table("labels") as batch:
        batch.drop_column("scored_alert")
        batch.drop_column("scored_anomaly")
