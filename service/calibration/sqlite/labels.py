"""Labels and submissions in SQLite: idempotent submits, listings and the normal sample."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any

from service.calibration.records import LabelFilter, NewLabel, NormalSample, StoredLabel, Submission
from service.calibration.sqlite.database import SqliteDatabase, from_row, loads_floats
from service.calibration.store import IdempotencyConflict, StoreError


class LabelTables(SqliteDatabase):
    """The ``submissions`` and ``labels`` tables."""

    @staticmethod
    def _label(row: sqlite3.Row) -> StoredLabel:
        return from_row(
            StoredLabel,
            row,
            sensor_errors=loads_floats(row["sensor_errors"]),
            scored_anomaly=bool(row["scored_anomaly"]),
            scored_alert=bool(row["scored_alert"]),
        )

    def _load_submission(
        self, conn: sqlite3.Connection, row: sqlite3.Row, *, replayed: bool
    ) -> Submission:
        labels = conn.execute(
            "SELECT * FROM labels WHERE submission_id = ? ORDER BY id", (row["id"],)
        ).fetchall()
        return Submission(
            id=row["id"],
            client_label_id=row["client_label_id"],
            author=row["author"],
            created_at=row["created_at"],
            labels=tuple(self._label(r) for r in labels),
            replayed=replayed,
        )

    def submit_labels(
        self,
        labels: Sequence[NewLabel],
        *,
        author: str,
        client_label_id: str | None,
        content_hash: str,
    ) -> Submission:
        """Write a submission and its labels in one transaction, or replay the one already
        written under the same client label id (:class:`IdempotencyConflict` if it differs)."""
        if not labels:
            raise StoreError("a submission needs at least one label")
        now = self._clock()
        with self._transaction() as conn:
            if client_label_id is not None:
                existing = conn.execute(
                    "SELECT * FROM submissions WHERE client_label_id = ?", (client_label_id,)
                ).fetchone()
                if existing is not None:
                    if existing["content_hash"] != content_hash:
                        raise IdempotencyConflict(client_label_id)
                    return self._load_submission(conn, existing, replayed=True)
            cursor = conn.execute(
                "INSERT INTO submissions (client_label_id, content_hash, author, created_at) "
                "VALUES (?, ?, ?, ?)",
                (client_label_id, content_hash, author, now),
            )
            submission_id = cursor.lastrowid
            conn.executemany(
                "INSERT INTO labels (submission_id, model, model_version, label, error, "
                "sensor_errors, threshold_value, threshold_version, source, stream_id, "
                "reading_id, reading_time, note, author, created_at, scored_anomaly, "
                "scored_alert, excluded_from_learning) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        submission_id,
                        lab.model,
                        lab.model_version,
                        lab.label,
                        float(lab.error),
                        json.dumps([float(v) for v in lab.sensor_errors]),
                        float(lab.threshold_value),
                        lab.threshold_version,
                        lab.source,
                        lab.stream_id,
                        lab.reading_id,
                        lab.reading_time,
                        lab.note,
                        author,
                        now,
                        int(
                            lab.error > lab.threshold_value
                            if lab.scored_anomaly is None
                            else lab.scored_anomaly
                        ),
                        int(lab.scored_alert),
                        lab.excluded_from_learning,
                    )
                    for lab in labels
                ],
            )
            row = conn.execute(
                "SELECT * FROM submissions WHERE id = ?", (submission_id,)
            ).fetchone()
            return self._load_submission(conn, row, replayed=False)

    def find_submission(self, client_label_id: str) -> tuple[str, Submission] | None:
        """The stored submission and its content hash, so a replay can skip re-scoring."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM submissions WHERE client_label_id = ?", (client_label_id,)
            ).fetchone()
            if row is None:
                return None
            return row["content_hash"], self._load_submission(self._conn, row, replayed=True)

    @staticmethod
    def _where(filters: LabelFilter) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        for column, value in (
            ("model", filters.model),
            ("label", filters.label),
            ("stream_id", filters.stream_id),
            ("author", filters.author),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if filters.since is not None:
            clauses.append("created_at >= ?")
            params.append(filters.since)
        if filters.until is not None:
            clauses.append("created_at < ?")
            params.append(filters.until)
        return (" AND ".join(clauses) or "1 = 1"), params

    def list_labels(
        self, filters: LabelFilter, *, limit: int, before_id: int | None = None
    ) -> list[StoredLabel]:
        """Newest first; page with ``before_id`` = the last id of the previous page."""
        where, params = self._where(filters)
        if before_id is not None:
            where += " AND id < ?"
            params.append(before_id)
        rows = self._query(
            f"SELECT * FROM labels WHERE {where} ORDER BY id DESC LIMIT ?", [*params, limit]
        )
        return [self._label(r) for r in rows]

    def count_labels(self, filters: LabelFilter) -> int:
        where, params = self._where(filters)
        return int(self._query(f"SELECT COUNT(*) FROM labels WHERE {where}", params)[0][0])

    def normal_sample(
        self, model: str, model_version: str, *, since: float, limit: int
    ) -> NormalSample:
        """The newest ``limit`` confirmed normals since ``since`` for this model version:
        one vote per reading (its latest label), none for a reading anyone confirmed as an
        anomaly, none for a label kept out of learning (maintenance window, learning
        freeze)."""
        rows = self._query(
            """
            SELECT id, error, sensor_errors, scored_anomaly, scored_alert, source
            FROM labels AS n
            WHERE n.model = ? AND n.model_version = ? AND n.label = 'normal'
              AND n.created_at >= ?
              AND n.excluded_from_learning IS NULL
              AND (n.reading_id IS NULL OR (
                  NOT EXISTS (
                      SELECT 1 FROM labels AS a
                      WHERE a.model = n.model AND a.reading_id = n.reading_id
                        AND a.stream_id IS n.stream_id AND a.label = 'anomaly')
                  AND n.id = (
                      SELECT MAX(d.id) FROM labels AS d
                      WHERE d.model = n.model AND d.reading_id = n.reading_id
                        AND d.stream_id IS n.stream_id)))
            ORDER BY id DESC LIMIT ?
            """,
            (model, model_version, since, limit),
        )
        rows.reverse()
        return NormalSample(
            errors=tuple(float(r["error"]) for r in rows),
            sensor_errors=tuple(loads_floats(r["sensor_errors"]) for r in rows),
            label_ids=tuple(int(r["id"]) for r in rows),
            flagged=tuple(bool(r["scored_anomaly"] or r["scored_alert"]) for r in rows),
            representative=tuple(r["source"] != "reading_id" for r in rows),
        )

    def labelled_readings(
        self, model: str, readings: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Which of these (stream id, reading id) pairs already carry a label (the review
        queue skips them). A pair, not an id: clients may reuse their ids across streams."""
        wanted = set(readings)
        found: set[tuple[str, str]] = set()
        ids = list(dict.fromkeys(reading_id for _, reading_id in readings))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows = self._query(
                "SELECT DISTINCT stream_id, reading_id FROM labels "
                f"WHERE model = ? AND reading_id IN ({marks})",
                [model, *chunk],
            )
            found.update((str(r[0]), str(r[1])) for r in rows)
        return found & wanted
