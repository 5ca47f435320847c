"""The record of every recalibration run, whatever it decided."""

from __future__ import annotations

import json

import sqlalchemy as sa

from service.calibration.records import NewRun, RecalibrationRun
from service.calibration.sql.database import SqlDatabase, from_row
from service.calibration.sql.schema import recalibration_runs as runs


class RunTables(SqlDatabase):
    """The ``recalibration_runs`` table."""

    @staticmethod
    def _run(row: sa.RowMapping) -> RecalibrationRun:
        return from_row(RecalibrationRun, row, statistics=json.loads(row["statistics"]))

    def record_run(self, run: NewRun) -> RecalibrationRun:
        statement = (
            sa.insert(runs)
            .values(
                model=run.model,
                model_version=run.model_version,
                trigger=run.trigger,
                outcome=run.outcome,
                current_value=run.current_value,
                candidate=run.candidate,
                n_samples=run.n_samples,
                message=run.message,
                statistics=json.dumps(run.statistics, sort_keys=True),
                threshold_version=run.threshold_version,
                pending_id=run.pending_id,
                started_at=run.started_at,
                finished_at=self._clock(),
            )
            .returning(runs.c.id)
        )

        def work(conn: sa.Connection) -> sa.RowMapping:
            run_id = conn.execute(statement).scalar_one()
            # Read back, not RETURNING: SQLite returns a REAL column's 1.0 as the integer 1.
            return conn.execute(sa.select(runs).where(runs.c.id == run_id)).mappings().one()

        return self._run(self._write(work))

    def list_runs(self, model: str | None = None, *, limit: int = 50) -> list[RecalibrationRun]:
        query = sa.select(runs).order_by(runs.c.id.desc()).limit(limit)
        if model is not None:
            query = query.where(runs.c.model == model)
        return [self._run(r) for r in self._rows(query)]
