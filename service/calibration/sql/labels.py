"""Labels and submissions: idempotent submits, reading votes and listings (the normal sample
they give is read in normal_sample.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from service.calibration.records import (
    LabelFilter,
    NewLabel,
    StoredLabel,
    Submission,
)
from service.calibration.sql.database import SqlDatabase, from_row, loads_floats
from service.calibration.sql.schema import labels as label_rows
from service.calibration.sql.schema import reading_votes, submissions
from service.calibration.store import IdempotencyConflict, StoreError


class LabelTables(SqlDatabase):
    """The ``submissions``, ``labels`` and ``reading_votes`` tables."""

    @staticmethod
    def _label(row: sa.RowMapping) -> StoredLabel:
        return from_row(
            StoredLabel,
            row,
            sensor_errors=loads_floats(row["sensor_errors"]),
            scored_anomaly=bool(row["scored_anomaly"]),
            scored_alert=bool(row["scored_alert"]),
        )

    def _load_submission(
        self, conn: sa.Connection, row: sa.RowMapping, *, replayed: bool
    ) -> Submission:
        rows = conn.execute(
            sa.select(label_rows)
            .where(label_rows.c.submission_id == row["id"])
            .order_by(label_rows.c.id)
        ).mappings()
        return Submission(
            id=row["id"],
            client_label_id=row["client_label_id"],
            author=row["author"],
            created_at=row["created_at"],
            labels=tuple(self._label(r) for r in rows),
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
        written under the same client label id (:class:`IdempotencyConflict` if it differs).
        Two identical submissions racing on two replicas: the unique client label id lets
        one insert; the other runs again and replays it."""
        if not labels:
            raise StoreError("a submission needs at least one label")
        now = self._clock()

        def work(conn: sa.Connection) -> Submission:
            if client_label_id is not None:
                existing = (
                    conn.execute(
                        sa.select(submissions).where(
                            submissions.c.client_label_id == client_label_id
                        )
                    )
                    .mappings()
                    .first()
                )
                if existing is not None:
                    if existing["content_hash"] != content_hash:
                        raise IdempotencyConflict(client_label_id)
                    return self._load_submission(conn, existing, replayed=True)
            submission_id = conn.execute(
                sa.insert(submissions)
                .values(
                    client_label_id=client_label_id,
                    content_hash=content_hash,
                    author=author,
                    created_at=now,
                )
                .returning(submissions.c.id)
            ).scalar_one()
            rows = [_row(submission_id, lab, author, now) for lab in labels]
            ids = conn.execute(
                sa.insert(label_rows).returning(label_rows.c.id, sort_by_parameter_order=True),
                rows,
            ).scalars()
            stored = list(zip(ids, labels, strict=True))
            self._vote(conn, stored)
            # Built from what was written rather than read back: two statements fewer on
            # the path every label takes (the values are the ones a read would return).
            return Submission(
                id=submission_id,
                client_label_id=client_label_id,
                author=author,
                created_at=now,
                labels=tuple(
                    _stored(label_id, row) for (label_id, _), row in zip(stored, rows, strict=True)
                ),
                replayed=False,
            )

        return self._write(work)

    def _vote(self, conn: sa.Connection, stored: list[tuple[int, NewLabel]]) -> None:
        """Each labelled reading's vote row now names its latest label, and is contested
        once any label calls it an anomaly. Guarded comparisons, not assignments: a
        concurrent writer may have committed a later label first."""
        votes: dict[tuple[str, str, str], tuple[int, int]] = {}
        for label_id, lab in stored:
            if lab.reading_id is None:
                continue
            key = (lab.model, lab.stream_id or "", lab.reading_id)
            latest, contested = votes.get(key, (0, 0))
            votes[key] = (max(latest, label_id), contested or int(lab.label == "anomaly"))
        if not votes:
            return
        # The same upsert on both backends; each dialect has its own construct for it.
        insert: sqlite.Insert | postgresql.Insert = (
            postgresql.insert(reading_votes)
            if self.dialect == "postgresql"
            else sqlite.insert(reading_votes)
        )
        upsert = insert.on_conflict_do_update(
            index_elements=["model", "stream_key", "reading_id"],
            set_={
                "latest_label_id": sa.case(
                    (
                        insert.excluded.latest_label_id > reading_votes.c.latest_label_id,
                        insert.excluded.latest_label_id,
                    ),
                    else_=reading_votes.c.latest_label_id,
                ),
                "contested": sa.case(
                    (insert.excluded.contested == 1, 1), else_=reading_votes.c.contested
                ),
            },
        )
        conn.execute(
            upsert,
            [
                {
                    "model": model,
                    "stream_key": stream_key,
                    "reading_id": reading_id,
                    "latest_label_id": latest,
                    "contested": contested,
                }
                for (model, stream_key, reading_id), (latest, contested) in votes.items()
            ],
        )

    def find_submission(self, client_label_id: str) -> tuple[str, Submission] | None:
        """The stored submission and its content hash, so a replay can skip re-scoring."""

        def work(conn: sa.Connection) -> tuple[str, Submission] | None:
            row = (
                conn.execute(
                    sa.select(submissions).where(submissions.c.client_label_id == client_label_id)
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            return row["content_hash"], self._load_submission(conn, row, replayed=True)

        return self._read(work)

    @staticmethod
    def _where(filters: LabelFilter) -> list[sa.ColumnElement[bool]]:
        clauses: list[sa.ColumnElement[bool]] = []
        for column, value in (
            (label_rows.c.model, filters.model),
            (label_rows.c.label, filters.label),
            (label_rows.c.stream_id, filters.stream_id),
            (label_rows.c.author, filters.author),
        ):
            if value is not None:
                clauses.append(column == value)
        if filters.since is not None:
            clauses.append(label_rows.c.created_at >= filters.since)
        if filters.until is not None:
            clauses.append(label_rows.c.created_at < filters.until)
        return clauses

    def list_labels(
        self, filters: LabelFilter, *, limit: int, before_id: int | None = None
    ) -> list[StoredLabel]:
        """Newest first; page with ``before_id`` = the last id of the previous page."""
        clauses = self._where(filters)
        if before_id is not None:
            clauses.append(label_rows.c.id < before_id)
        query = sa.select(label_rows).where(*clauses).order_by(label_rows.c.id.desc()).limit(limit)
        return [self._label(r) for r in self._rows(query)]

    def count_labels(self, filters: LabelFilter) -> int:
        query = sa.select(sa.func.count()).select_from(label_rows).where(*self._where(filters))
        return int(self._read(lambda conn: conn.execute(query).scalar_one()))

    def labelled_readings(
        self, model: str, readings: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Which of these (stream id, reading id) pairs already carry a label (the review
        queue skips them). A pair, not an id: clients may reuse their ids across streams."""
        wanted = set(readings)
        found: set[tuple[str, str]] = set()
        ids = list(dict.fromkeys(reading_id for _, reading_id in readings))
        for start in range(0, len(ids), 500):
            query = sa.select(reading_votes.c.stream_key, reading_votes.c.reading_id).where(
                reading_votes.c.model == model,
                reading_votes.c.reading_id.in_(ids[start : start + 500]),
            )
            found.update((str(r["stream_key"]), str(r["reading_id"])) for r in self._rows(query))
        return found & wanted


def _stored(label_id: int, row: dict[str, Any]) -> StoredLabel:
    return StoredLabel(
        id=label_id,
        **{
            k: v
            for k, v in row.items()
            if k not in ("sensor_errors", "scored_anomaly", "scored_alert")
        },
        sensor_errors=loads_floats(row["sensor_errors"]),
        scored_anomaly=bool(row["scored_anomaly"]),
        scored_alert=bool(row["scored_alert"]),
    )


def _row(submission_id: int, lab: NewLabel, author: str, now: float) -> dict[str, Any]:
    scored_anomaly = (
        lab.error > lab.threshold_value if lab.scored_anomaly is None else lab.scored_anomaly
    )
    return {
        "submission_id": submission_id,
        "model": lab.model,
        "model_version": lab.model_version,
        "label": lab.label,
        "error": float(lab.error),
        "sensor_errors": json.dumps([float(v) for v in lab.sensor_errors]),
        "threshold_value": float(lab.threshold_value),
        "threshold_version": lab.threshold_version,
        "source": lab.source,
        "stream_id": lab.stream_id,
        "reading_id": lab.reading_id,
        "reading_time": lab.reading_time,
        "note": lab.note,
        "author": author,
        "created_at": now,
        "scored_anomaly": int(scored_anomaly),
        "scored_alert": int(lab.scored_alert),
        "excluded_from_learning": lab.excluded_from_learning,
        "score": None if lab.score is None else float(lab.score),
    }
