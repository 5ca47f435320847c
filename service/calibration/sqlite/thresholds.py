"""Threshold versions, pending thresholds and recalibration runs in SQLite.

Version numbers are allocated inside the writing transaction (``BEGIN IMMEDIATE`` holds
the write lock), so two writers can never allocate the same one.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from service.calibration.records import (
    PendingStatus,
    PendingThreshold,
    RecalibrationRun,
    RunOutcome,
    ThresholdSource,
    ThresholdVersion,
)
from service.calibration.sqlite.database import SqliteDatabase, from_row
from service.calibration.store import (
    PendingAlreadyDecided,
    PendingNotFound,
    StoreError,
    ThresholdVersionNotFound,
)


class ThresholdTables(SqliteDatabase):
    """The ``threshold_versions``, ``pending_thresholds`` and ``recalibration_runs`` tables."""

    @staticmethod
    def _threshold(row: sqlite3.Row) -> ThresholdVersion:
        return from_row(ThresholdVersion, row, statistics=json.loads(row["statistics"]))

    def latest_threshold(self, model: str, model_version: str) -> ThresholdVersion | None:
        rows = self._query(
            "SELECT * FROM threshold_versions WHERE model = ? AND model_version = ? "
            "ORDER BY version DESC LIMIT 1",
            (model, model_version),
        )
        return self._threshold(rows[0]) if rows else None

    def threshold_history(self, model: str) -> list[ThresholdVersion]:
        rows = self._query(
            "SELECT * FROM threshold_versions WHERE model = ? ORDER BY version", (model,)
        )
        return [self._threshold(r) for r in rows]

    def threshold_version(self, model: str, version: int) -> ThresholdVersion:
        rows = self._query(
            "SELECT * FROM threshold_versions WHERE model = ? AND version = ?", (model, version)
        )
        if not rows:
            raise ThresholdVersionNotFound(model, version)
        return self._threshold(rows[0])

    def _append_threshold(
        self,
        conn: sqlite3.Connection,
        model: str,
        model_version: str,
        *,
        value: float,
        baseline: float,
        source: ThresholdSource,
        reason: str,
        author: str,
        statistics: dict[str, Any],
        keep_pending: int | None = None,
    ) -> ThresholdVersion:
        """New version = max + 1 inside the caller's transaction. Open pendings computed
        against the old threshold are superseded: approving them later would be stale."""
        if not value > 0:
            raise StoreError(f"threshold for {model} must be positive, got {value}")
        now = self._clock()
        current = conn.execute(
            "SELECT MAX(version) FROM threshold_versions WHERE model = ?", (model,)
        ).fetchone()[0]
        version = int(current or 0) + 1
        conn.execute(
            "INSERT INTO threshold_versions (model, version, model_version, value, baseline, "
            "source, reason, author, statistics, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                model,
                version,
                model_version,
                float(value),
                float(baseline),
                source,
                reason,
                author,
                json.dumps(statistics, sort_keys=True),
                now,
            ),
        )
        conn.execute(
            "UPDATE pending_thresholds SET status = 'superseded', decided_at = ?, "
            "decided_by = ? WHERE model = ? AND status = 'pending' AND id IS NOT ?",
            (now, author, model, keep_pending),
        )
        row = conn.execute(
            "SELECT * FROM threshold_versions WHERE model = ? AND version = ?", (model, version)
        ).fetchone()
        return self._threshold(row)

    def append_threshold(
        self,
        model: str,
        model_version: str,
        *,
        value: float,
        baseline: float,
        source: ThresholdSource,
        reason: str,
        author: str,
        statistics: dict[str, Any],
    ) -> ThresholdVersion:
        with self._transaction() as conn:
            return self._append_threshold(
                conn,
                model,
                model_version,
                value=value,
                baseline=baseline,
                source=source,
                reason=reason,
                author=author,
                statistics=statistics,
            )

    def ensure_threshold(
        self, model: str, model_version: str, *, value: float, reason: str
    ) -> ThresholdVersion:
        """The latest version for this model version, or the manifest's threshold persisted
        as a new version when this model version has none yet (first start, new artifact).

        Pinning back to an older model version whose latest threshold is not the model's
        latest appends that value again (source "restore"): the version in force only ever
        increases, so dashboards and clients never see it go backwards."""
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT * FROM threshold_versions WHERE model = ? AND model_version = ? "
                "ORDER BY version DESC LIMIT 1",
                (model, model_version),
            ).fetchone()
            if row is not None:
                newest = conn.execute(
                    "SELECT MAX(version) FROM threshold_versions WHERE model = ?", (model,)
                ).fetchone()[0]
                if row["version"] == newest:
                    return self._threshold(row)
                return self._append_threshold(
                    conn,
                    model,
                    model_version,
                    value=row["value"],
                    baseline=row["baseline"],
                    source="restore",
                    reason=f"{model}/{model_version} served again: the value of its latest "
                    f"threshold version {row['version']} is back in force",
                    author="system",
                    statistics={"restored_version": row["version"]},
                )
            return self._append_threshold(
                conn,
                model,
                model_version,
                value=value,
                baseline=value,
                source="manifest",
                reason=reason,
                author="system",
                statistics={},
            )

    # --- pending approvals ------------------------------------------------------------

    @staticmethod
    def _pending(row: sqlite3.Row) -> PendingThreshold:
        return from_row(PendingThreshold, row, statistics=json.loads(row["statistics"]))

    def open_pending(self, model: str) -> PendingThreshold | None:
        rows = self._query(
            "SELECT * FROM pending_thresholds WHERE model = ? AND status = 'pending' "
            "ORDER BY id DESC LIMIT 1",
            (model,),
        )
        return self._pending(rows[0]) if rows else None

    def get_pending(self, pending_id: int) -> PendingThreshold:
        rows = self._query("SELECT * FROM pending_thresholds WHERE id = ?", (pending_id,))
        if not rows:
            raise PendingNotFound(pending_id)
        return self._pending(rows[0])

    def list_pending(
        self, model: str | None = None, status: PendingStatus | None = None
    ) -> list[PendingThreshold]:
        clauses, params = ["1 = 1"], []
        if model is not None:
            clauses.append("model = ?")
            params.append(model)
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        rows = self._query(
            f"SELECT * FROM pending_thresholds WHERE {' AND '.join(clauses)} ORDER BY id DESC",
            params,
        )
        return [self._pending(r) for r in rows]

    def create_pending(
        self,
        model: str,
        model_version: str,
        *,
        candidate: float,
        current: ThresholdVersion,
        relative_change: float,
        reason: str,
        statistics: dict[str, Any],
    ) -> PendingThreshold:
        """One open pending per model: a newer candidate supersedes the older one."""
        now = self._clock()
        with self._transaction() as conn:
            conn.execute(
                "UPDATE pending_thresholds SET status = 'superseded', decided_at = ?, "
                "decided_by = 'system' WHERE model = ? AND status = 'pending'",
                (now, model),
            )
            cursor = conn.execute(
                "INSERT INTO pending_thresholds (model, model_version, candidate, current_value, "
                "current_version, relative_change, reason, statistics, status, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)",
                (
                    model,
                    model_version,
                    float(candidate),
                    current.value,
                    current.version,
                    float(relative_change),
                    reason,
                    json.dumps(statistics, sort_keys=True),
                    now,
                ),
            )
            row = conn.execute(
                "SELECT * FROM pending_thresholds WHERE id = ?", (cursor.lastrowid,)
            ).fetchone()
            return self._pending(row)

    def _open_pending_row(self, conn: sqlite3.Connection, pending_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM pending_thresholds WHERE id = ?", (pending_id,)
        ).fetchone()
        if row is None:
            raise PendingNotFound(pending_id)
        if row["status"] != "pending":
            raise PendingAlreadyDecided(pending_id, row["status"])
        return row

    def approve_pending(self, pending_id: int, *, author: str, reason: str) -> ThresholdVersion:
        """Apply the candidate as a new version and close the pending, atomically."""
        with self._transaction() as conn:
            row = self._open_pending_row(conn, pending_id)
            current = conn.execute(
                "SELECT baseline FROM threshold_versions WHERE model = ? AND version = ?",
                (row["model"], row["current_version"]),
            ).fetchone()
            statistics = json.loads(row["statistics"])
            statistics["pending_id"] = pending_id
            version = self._append_threshold(
                conn,
                row["model"],
                row["model_version"],
                value=row["candidate"],
                baseline=current["baseline"],
                source="approval",
                reason=reason or row["reason"],
                author=author,
                statistics=statistics,
                keep_pending=pending_id,
            )
            conn.execute(
                "UPDATE pending_thresholds SET status = 'approved', decided_by = ?, "
                "decided_at = ?, applied_version = ? WHERE id = ?",
                (author, self._clock(), version.version, pending_id),
            )
            return version

    def reject_pending(self, pending_id: int, *, author: str, reason: str) -> PendingThreshold:
        with self._transaction() as conn:
            self._open_pending_row(conn, pending_id)
            conn.execute(
                "UPDATE pending_thresholds SET status = 'rejected', decided_by = ?, "
                "decided_at = ?, reason = reason || ' | rejected: ' || ? WHERE id = ?",
                (author, self._clock(), reason, pending_id),
            )
            row = conn.execute(
                "SELECT * FROM pending_thresholds WHERE id = ?", (pending_id,)
            ).fetchone()
            return self._pending(row)

    # --- recalibration runs -----------------------------------------------------------

    @staticmethod
    def _run(row: sqlite3.Row) -> RecalibrationRun:
        return from_row(RecalibrationRun, row, statistics=json.loads(row["statistics"]))

    def record_run(
        self,
        *,
        model: str,
        model_version: str,
        trigger: str,
        outcome: RunOutcome,
        current_value: float,
        candidate: float | None,
        n_samples: int,
        message: str,
        statistics: dict[str, Any],
        threshold_version: int | None,
        pending_id: int | None,
        started_at: float,
    ) -> RecalibrationRun:
        with self._transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO recalibration_runs (model, model_version, trigger, outcome, "
                "current_value, candidate, n_samples, message, statistics, threshold_version, "
                "pending_id, started_at, finished_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model,
                    model_version,
                    trigger,
                    outcome,
                    current_value,
                    candidate,
                    n_samples,
                    message,
                    json.dumps(statistics, sort_keys=True),
                    threshold_version,
                    pending_id,
                    started_at,
                    self._clock(),
                ),
            )
            row = conn.execute(
                "SELECT * FROM recalibration_runs WHERE id = ?", (cursor.lastrowid,)
            ).fetchone()
            return self._run(row)

    def list_runs(self, model: str | None = None, *, limit: int = 50) -> list[RecalibrationRun]:
        if model is None:
            rows = self._query(
                "SELECT * FROM recalibration_runs ORDER BY id DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._query(
                "SELECT * FROM recalibration_runs WHERE model = ? ORDER BY id DESC LIMIT ?",
                (model, limit),
            )
        return [self._run(r) for r in rows]
