"""Indexes for rolling windows and listings: the queries filter on model, label and time.

Revision ID: 0002
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("labels_model_label_time", "labels", ["model", "label", "created_at"])
    op.create_index("labels_reading", "labels", ["model", "reading_id"])
    op.create_index("labels_stream_time", "labels", ["stream_id", "created_at"])
    op.create_index("pending_model_status", "pending_thresholds", ["model", "status"])
    op.create_index("runs_model", "recalibration_runs", ["model", "id"])


def downgrade() -> None:
    op.drop_index("runs_model", "recalibration_runs")
    op.drop_index("pending_model_status", "pending_thresholds")
    op.drop_index("labels_stream_time", "labels")
    op.drop_index("labels_reading", "labels")
    op.drop_index("labels_model_label_time", "labels")
