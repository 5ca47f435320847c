"""The score each labelled reading had when it was scored: the error smoothed as its stream
was, which is what the threshold of a model that declares its smoothing applies to.

Older labels have none (NULL): a model with a declared smoothing recalibrates from the
labels that have one.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("labels", sa.Column("score", sa.Float))


def downgrade() -> None:
    # SQLite rebuilds the table; it keeps AUTOINCREMENT (ids never reused) only if told.
    with op.batch_alter_table("labels", table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("score")
