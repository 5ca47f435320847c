"""Threshold versions and pending thresholds (recalibration runs: ``runs.py``).

Every write that touches a model's versions or pendings first locks the model's row in
``threshold_heads`` (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already holds the whole store), so writers on several replicas take turns: each version
number is the head's plus one, none is skipped or given twice (the primary key on
(model, version) would refuse a duplicate anyway).
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from service.calibration.records import (
    CHOSEN_BY_A_PERSON,
    PendingStatus,
    PendingThreshold,
    ThresholdSource,
    ThresholdVersion,
)
from service.calibration.sql.database import SqlDatabase, from_row
from service.calibration.sql.schema import (
    pending_thresholds,
    threshold_heads,
    threshold_versions,
)
from service.calibration.store import (
    PendingAlreadyDecided,
    PendingNotFound,
    StoreError,
    ThresholdVersionNotFound,
)

versions = threshold_versions
pendings = pending_thresholds


class ThresholdTables(SqlDatabase):
    """The ``threshold_versions``, ``threshold_heads`` and ``pending_thresholds`` tables."""

    @staticmethod
    def _threshold(row: sa.RowMapping) -> ThresholdVersion:
        return from_row(ThresholdVersion, row, statistics=json.loads(row["statistics"]))

    @staticmethod
    def _latest_query(model: str, model_version: str) -> sa.Select[Any]:
        return (
            sa.select(versions)
            .where(versions.c.model == model, versions.c.model_version == model_version)
            .order_by(versions.c.version.desc())
            .limit(1)
        )

    def latest_threshold(self, model: str, model_version: str) -> ThresholdVersion | None:
        rows = self._rows(self._latest_query(model, model_version))
        return self._threshold(rows[0]) if rows else None

    def threshold_history(self, model: str) -> list[ThresholdVersion]:
        query = sa.select(versions).where(versions.c.model == model).order_by(versions.c.version)
        return [self._threshold(r) for r in self._rows(query)]

    def latest_chosen_threshold(
        self, model: str, model_version: str, baseline: float, *, before: int | None = None
    ) -> ThresholdVersion | None:
        query = sa.select(versions).where(
            versions.c.model == model,
            versions.c.model_version == model_version,
            versions.c.baseline == baseline,
            versions.c.source.in_(sorted(CHOSEN_BY_A_PERSON)),
        )
        if before is not None:
            query = query.where(versions.c.version < before)
        rows = self._rows(query.order_by(versions.c.version.desc()).limit(1))
        return self._threshold(rows[0]) if rows else None

    def threshold_version(self, model: str, version: int) -> ThresholdVersion:
        rows = self._rows(
            sa.select(versions).where(versions.c.model == model, versions.c.version == version)
        )
        if not rows:
            raise ThresholdVersionNotFound(model, version)
        return self._threshold(rows[0])

    def newest_versions(self) -> dict[str, int]:
        """Each model's newest version number (what replicas compare to learn of changes)."""
        rows = self._rows(sa.select(threshold_heads).where(threshold_heads.c.version > 0))
        return {str(r["model"]): int(r["version"]) for r in rows}

    @staticmethod
    def _lock_head(conn: sa.Connection, model: str) -> int:
        """The model's newest version number (0 before its first), its row locked until the
        transaction ends. A model's first writer creates the row: when two replicas do so
        at once, one insert wins and the other transaction is run again
        (``SqlDatabase._write``), finding the row; no reads made before it is locked."""
        head = conn.execute(
            sa.select(threshold_heads.c.version)
            .where(threshold_heads.c.model == model)
            .with_for_update()
        ).scalar()
        if head is None:
            conn.execute(sa.insert(threshold_heads).values(model=model, version=0))
            return 0
        return int(head)

    def _append_threshold(
        self,
        conn: sa.Connection,
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
        """New version = head + 1 inside the caller's transaction (which holds the head's
        lock). Open pendings computed against the old threshold are superseded: approving
        them later would be stale."""
        if not value > 0:
            raise StoreError(f"threshold for {model} must be positive, got {value}")
        now = self._clock()
        version = self._lock_head(conn, model) + 1
        conn.execute(
            sa.update(threshold_heads)
            .where(threshold_heads.c.model == model)
            .values(version=version)
        )
        conn.execute(
            sa.insert(versions).values(
                model=model,
                version=version,
                model_version=model_version,
                value=float(value),
                baseline=float(baseline),
                source=source,
                reason=reason,
                author=author,
                statistics=json.dumps(statistics, sort_keys=True),
                created_at=now,
            )
        )
        # Read back, not RETURNING: SQLite returns a REAL column's 1.0 as the integer 1.
        row = (
            conn.execute(
                sa.select(versions).where(versions.c.model == model, versions.c.version == version)
            )
            .mappings()
            .one()
        )
        supersede = sa.update(pendings).where(
            pendings.c.model == model, pendings.c.status == "pending"
        )
        if keep_pending is not None:
            supersede = supersede.where(pendings.c.id != keep_pending)
        conn.execute(supersede.values(status="superseded", decided_at=now, decided_by=author))
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
        return self._write(
            lambda conn: self._append_threshold(
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
        )

    def ensure_threshold(
        self, model: str, model_version: str, *, value: float, reason: str
    ) -> ThresholdVersion:
        """The latest version for this model version, or the manifest's threshold persisted
        as a new version when this model version has none yet (first start, new artifact).

        Pinning back to an older model version whose latest threshold is not the model's
        latest appends that value again (source "restore"): the version in force only ever
        increases, so dashboards and clients never see it go backwards.

        Every version of a model version keeps the manifest threshold it started from as its
        baseline. A served manifest with another threshold is another artifact written under
        the same name and version (``train --force``): the stored versions were set for a
        model no longer served, so its manifest's threshold is appended instead."""

        def work(conn: sa.Connection) -> ThresholdVersion:
            newest = self._lock_head(conn, model)
            row = conn.execute(self._latest_query(model, model_version)).mappings().first()
            if row is not None and float(row["baseline"]) == value:
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
            replaced = {} if row is None else {"replaced_baseline": float(row["baseline"])}
            why = reason
            if replaced:
                why = (
                    f"{model}/{model_version} is another artifact than the one its stored "
                    f"thresholds were set for (its manifest's threshold {value:.6g}, theirs "
                    f"{replaced['replaced_baseline']:.6g}): {reason}"
                )
            return self._append_threshold(
                conn,
                model,
                model_version,
                value=value,
                baseline=value,
                source="manifest",
                reason=why,
                author="system",
                statistics=replaced,
            )

        return self._write(work)

    # --- pending approvals ------------------------------------------------------------

    @staticmethod
    def _pending(row: sa.RowMapping) -> PendingThreshold:
        return from_row(PendingThreshold, row, statistics=json.loads(row["statistics"]))

    def open_pending(self, model: str) -> PendingThreshold | None:
        rows = self._rows(
            sa.select(pendings)
            .where(pendings.c.model == model, pendings.c.status == "pending")
            .order_by(pendings.c.id.desc())
            .limit(1)
        )
        return self._pending(rows[0]) if rows else None

    def get_pending(self, pending_id: int) -> PendingThreshold:
        rows = self._rows(sa.select(pendings).where(pendings.c.id == pending_id))
        if not rows:
            raise PendingNotFound(pending_id)
        return self._pending(rows[0])

    def list_pending(
        self, model: str | None = None, status: PendingStatus | None = None
    ) -> list[PendingThreshold]:
        query = sa.select(pendings).order_by(pendings.c.id.desc())
        if model is not None:
            query = query.where(pendings.c.model == model)
        if status is not None:
            query = query.where(pendings.c.status == status)
        return [self._pending(r) for r in self._rows(query)]

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

        def work(conn: sa.Connection) -> PendingThreshold:
            self._lock_head(conn, model)
            conn.execute(
                sa.update(pendings)
                .where(pendings.c.model == model, pendings.c.status == "pending")
                .values(status="superseded", decided_at=now, decided_by="system")
            )
            row = conn.execute(
                sa.insert(pendings)
                .values(
                    model=model,
                    model_version=model_version,
                    candidate=float(candidate),
                    current_value=current.value,
                    current_version=current.version,
                    relative_change=float(relative_change),
                    reason=reason,
                    statistics=json.dumps(statistics, sort_keys=True),
                    status="pending",
                    created_at=now,
                )
                .returning(pendings.c.id)
            ).scalar_one()
            return self._pending(self._pending_row(conn, row))

        return self._write(work)

    @staticmethod
    def _pending_row(conn: sa.Connection, pending_id: int) -> sa.RowMapping:
        """Read back, not RETURNING: SQLite returns a REAL column's 1.0 as the integer 1."""
        return conn.execute(sa.select(pendings).where(pendings.c.id == pending_id)).mappings().one()

    def _open_pending_row(self, conn: sa.Connection, pending_id: int) -> sa.RowMapping:
        row = (
            conn.execute(sa.select(pendings).where(pendings.c.id == pending_id).with_for_update())
            .mappings()
            .first()
        )
        if row is None:
            raise PendingNotFound(pending_id)
        if row["status"] != "pending":
            raise PendingAlreadyDecided(pending_id, row["status"])
        return row

    def _locked_pending(self, conn: sa.Connection, pending_id: int) -> sa.RowMapping:
        """The open pending with its model's head locked first (the order every writer
        takes its locks in, so two can't wait on each other)."""
        model = conn.execute(
            sa.select(pendings.c.model).where(pendings.c.id == pending_id)
        ).scalar()
        if model is None:
            raise PendingNotFound(pending_id)
        self._lock_head(conn, str(model))
        return self._open_pending_row(conn, pending_id)

    def approve_pending(self, pending_id: int, *, author: str, reason: str) -> ThresholdVersion:
        """Apply the candidate as a new version and close the pending, atomically."""

        def work(conn: sa.Connection) -> ThresholdVersion:
            row = self._locked_pending(conn, pending_id)
            baseline = conn.execute(
                sa.select(versions.c.baseline).where(
                    versions.c.model == row["model"], versions.c.version == row["current_version"]
                )
            ).scalar_one()
            statistics = json.loads(row["statistics"])
            statistics["pending_id"] = pending_id
            version = self._append_threshold(
                conn,
                row["model"],
                row["model_version"],
                value=row["candidate"],
                baseline=baseline,
                source="approval",
                reason=reason or row["reason"],
                author=author,
                statistics=statistics,
                keep_pending=pending_id,
            )
            conn.execute(
                sa.update(pendings)
                .where(pendings.c.id == pending_id)
                .values(
                    status="approved",
                    decided_by=author,
                    decided_at=self._clock(),
                    applied_version=version.version,
                )
            )
            return version

        return self._write(work)

    def reject_pending(self, pending_id: int, *, author: str, reason: str) -> PendingThreshold:
        def work(conn: sa.Connection) -> PendingThreshold:
            row = self._locked_pending(conn, pending_id)
            conn.execute(
                sa.update(pendings)
                .where(pendings.c.id == pending_id)
                .values(
                    status="rejected",
                    decided_by=author,
                    decided_at=self._clock(),
                    reason=f"{row['reason']} | rejected: {reason}",
                )
            )
            return self._pending(self._pending_row(conn, pending_id))

        return self._write(work)
