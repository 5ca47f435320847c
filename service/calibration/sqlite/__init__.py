"""The single-replica feedback store: SQLite, one file, WAL with full fsync on commit."""

from __future__ import annotations

from service.calibration.sqlite.labels import LabelTables
from service.calibration.sqlite.maintenance import MaintenanceTables
from service.calibration.sqlite.migrations import MIGRATIONS
from service.calibration.sqlite.thresholds import ThresholdTables

__all__ = ["MIGRATIONS", "SqliteFeedbackStore"]


class SqliteFeedbackStore(LabelTables, ThresholdTables, MaintenanceTables):
    """:class:`service.calibration.store.FeedbackStore` on SQLite (``":memory:"`` for tests)."""
