"""The normal sample: the confirmed normals recalibration and drift learn from, and beside
them the labels the learning freeze kept out."""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa

from service.calibration.records import LEARNING_FREEZE, FrozenNormals, NormalSample
from service.calibration.sql.database import SqlDatabase, loads_floats
from service.calibration.sql.schema import labels as label_rows
from service.calibration.sql.schema import reading_votes


class NormalSampleQueries(SqlDatabase):
    """Reads the ``labels`` and ``reading_votes`` tables (written by
    :class:`~service.calibration.sql.labels.LabelTables`)."""

    def normal_sample(
        self,
        model: str,
        model_version: str,
        *,
        since: float,
        limit: int,
        with_frozen: bool = True,
    ) -> NormalSample:
        """The newest ``limit`` confirmed normals since ``since`` for this model version:
        one vote per reading (its latest label), none for a reading anyone confirmed as an
        anomaly, none for a label kept out of learning (maintenance window, learning
        freeze), but a label given to a reading's id also counts while its latest is one
        the learning freeze kept out (the label by id released it). Beside them, as
        ``frozen``, the labels the learning freeze kept out over the same stretch of time (no
        older than the oldest in the sample when it is full): each reading's newest, while
        its latest label is such a one or a label by id, and nobody confirmed it an
        anomaly; ``released`` when a label given to its id is learned from. Not read when
        not ``with_frozen`` (the drift test, which leaves them out)."""

        def read(conn: sa.Connection) -> tuple[list[sa.RowMapping], list[sa.RowMapping]]:
            learned = list(
                conn.execute(self._learned_query(model, model_version, since, limit)).mappings()
            )
            if not with_frozen:
                return learned[::-1], []
            oldest = learned[-1]["id"] if len(learned) == limit else None
            query = self._frozen_query(model, model_version, since, limit, oldest)
            return learned[::-1], list(conn.execute(query).mappings())[::-1]

        # One snapshot for both reads: a submission between them would show its frozen
        # labels without the rest of their range.
        rows, frozen = self._read(read, snapshot=True)
        return NormalSample(
            errors=tuple(float(r["error"]) for r in rows),
            sensor_errors=tuple(loads_floats(r["sensor_errors"]) for r in rows),
            label_ids=tuple(int(r["id"]) for r in rows),
            flagged=tuple(bool(r["scored_anomaly"] or r["scored_alert"]) for r in rows),
            representative=tuple(r["source"] != "reading_id" for r in rows),
            spans=tuple(_span(r) for r in rows),
            scores=tuple(_score(r) for r in rows),
            frozen=FrozenNormals(
                errors=tuple(float(r["error"]) for r in frozen),
                scores=tuple(_score(r) for r in frozen),
                spans=tuple(_span(r) for r in frozen),
                released=tuple(bool(r["released"]) for r in frozen),
            ),
        )

    @staticmethod
    def _normal_labels(
        model: str, model_version: str, since: float
    ) -> list[sa.ColumnElement[bool]]:
        return [
            label_rows.c.model == model,
            label_rows.c.model_version == model_version,
            label_rows.c.label == "normal",
            label_rows.c.created_at >= since,
        ]

    @staticmethod
    def _votes() -> sa.ColumnElement[bool]:
        """A label's reading's vote row."""
        return sa.and_(
            reading_votes.c.model == label_rows.c.model,
            reading_votes.c.stream_key == sa.func.coalesce(label_rows.c.stream_id, ""),
            reading_votes.c.reading_id == label_rows.c.reading_id,
        )

    def _learned_query(
        self, model: str, model_version: str, since: float, limit: int
    ) -> sa.Select[Any]:
        """The newest ``limit`` labels learned from, newest first: each reading by its latest
        label, or by its newest label by id when the latest is frozen, and only while nobody
        contests it."""
        latest, later = label_rows.alias("latest"), label_rows.alias("later")
        released = sa.and_(
            label_rows.c.source == "reading_id",
            latest.c.excluded_from_learning == LEARNING_FREEZE,
            ~sa.exists().where(_same_reading(later), _by_id(later), later.c.id > label_rows.c.id),
        )
        return (
            sa.select(*_SAMPLED)
            .select_from(
                label_rows.outerjoin(reading_votes, self._votes()).outerjoin(
                    latest, latest.c.id == reading_votes.c.latest_label_id
                )
            )
            .where(
                *self._normal_labels(model, model_version, since),
                label_rows.c.excluded_from_learning.is_(None),
                sa.or_(
                    label_rows.c.reading_id.is_(None),
                    sa.and_(
                        reading_votes.c.contested == 0,
                        sa.or_(reading_votes.c.latest_label_id == label_rows.c.id, released),
                    ),
                ),
            )
            .order_by(label_rows.c.id.desc())
            .limit(limit)
        )

    def _frozen_query(
        self, model: str, model_version: str, since: float, limit: int, oldest: int | None
    ) -> sa.Select[Any]:
        """Each reading's newest label the learning freeze kept out, newest first, and
        whether a label given to the reading's id released it."""
        latest, later, by_id = (label_rows.alias(n) for n in ("latest", "later", "by_id"))
        where = [
            *self._normal_labels(model, model_version, since),
            label_rows.c.excluded_from_learning == LEARNING_FREEZE,
            reading_votes.c.contested == 0,
            sa.or_(latest.c.excluded_from_learning == LEARNING_FREEZE, _by_id(latest)),
            ~sa.exists().where(
                _same_reading(later),
                later.c.excluded_from_learning == LEARNING_FREEZE,
                later.c.id > label_rows.c.id,
            ),
        ]
        if oldest is not None:
            where.append(label_rows.c.id >= oldest)
        released = sa.exists().where(_same_reading(by_id), _by_id(by_id)).label("released")
        return (
            sa.select(*_SAMPLED, released)
            .select_from(
                label_rows.join(reading_votes, self._votes()).join(
                    latest, latest.c.id == reading_votes.c.latest_label_id
                )
            )
            .where(*where)
            .order_by(label_rows.c.id.desc())
            .limit(limit)
        )


# What the normal sample reads of each label.
_SAMPLED = (
    label_rows.c.id,
    label_rows.c.error,
    label_rows.c.sensor_errors,
    label_rows.c.scored_anomaly,
    label_rows.c.scored_alert,
    label_rows.c.source,
    label_rows.c.submission_id,
    label_rows.c.stream_id,
    label_rows.c.score,
)


def _same_reading(other: sa.FromClause) -> sa.ColumnElement[bool]:
    """``other`` labels the same reading as the label in hand."""
    return sa.and_(
        other.c.model == label_rows.c.model,
        other.c.reading_id == label_rows.c.reading_id,
        sa.func.coalesce(other.c.stream_id, "") == sa.func.coalesce(label_rows.c.stream_id, ""),
    )


def _by_id(other: sa.FromClause) -> sa.ColumnElement[bool]:
    """``other`` was given to its reading's id and is learned from (votes that are not
    contested are all normal)."""
    return sa.and_(other.c.source == "reading_id", other.c.excluded_from_learning.is_(None))


def _span(row: sa.RowMapping) -> str:
    """The labels one request gave one stream share this key."""
    return f"{row['submission_id']}/{row['stream_id'] or ''}"


def _score(row: sa.RowMapping) -> float:
    return math.nan if row["score"] is None else float(row["score"])
