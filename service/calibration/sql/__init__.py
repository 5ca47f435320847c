"""The feedback store on SQLAlchemy Core: SQLite (one process, the embedded default) or
PostgreSQL (shared by replicas), one set of statements, Alembic migrations."""

from __future__ import annotations

from service.calibration.sql.labels import LabelTables
from service.calibration.sql.maintenance import MaintenanceTables
from service.calibration.sql.normal_sample import NormalSampleQueries
from service.calibration.sql.runs import RunTables
from service.calibration.sql.thresholds import ThresholdTables

__all__ = ["SqlFeedbackStore"]


class SqlFeedbackStore(
    LabelTables, NormalSampleQueries, ThresholdTables, RunTables, MaintenanceTables
):
    """:class:`service.calibration.store.FeedbackStore` on the database a URL names
    (``sqlite:///:memory:`` for tests)."""
