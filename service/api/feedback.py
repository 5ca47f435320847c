"""Operator feedback: label readings normal or anomaly, list labels (the review queue is in
:mod:`service.api.review`).

Thin: validation here, the work in :class:`service.calibration.labelling.LabellingDesk`.
A label is acknowledged (201, or 200 for an idempotent replay) only once it is on disk.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Self

from fastapi import APIRouter, Depends, Query, Response
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from service.api.bodies import JsonBodyRoute
from service.api.openapi import problems
from service.api.params import MAX_CLIENT_ID, DateTime, SecondsOrDateTime
from service.calibration import selections
from service.calibration.labelling import LabellingDesk
from service.calibration.records import (
    LabelFilter,
    StoredLabel,
    Submission,
    content_fingerprint,
)
from service.calibration.selections import Selection
from service.schemas import as_datetime, exactly_one_of
from service.scoring.manifest import NAME_MAX_LENGTH, NAME_PATTERN
from service.scoring.payload import (
    MAX_STREAM_ID,
    STREAM_ID_PATTERN,
    matrix_of_rows,
    stream_id_problem,
    timestamp_range_problem,
)
from service.security import Principal, require_scope
from service.state import DeskDep

FEEDBACK_SCOPE = require_scope("feedback")
FeedbackPrincipal = Annotated[Principal, Depends(FEEDBACK_SCOPE)]
MAX_READING_IDS = 10_000


def unix_seconds(moment: datetime) -> float:
    """Every datetime here is :class:`AwareDatetime`: a naive one is refused (422), as the
    scoring endpoint refuses ISO timestamps without a time zone."""
    return moment.timestamp()


def _in_range(moment: datetime) -> datetime:
    problem = timestamp_range_problem(moment.timestamp())
    if problem is not None:
        raise ValueError(f"a reading time {problem}")
    return moment


ReadingTime = Annotated[SecondsOrDateTime, AfterValidator(_in_range)]
"""The scoring endpoint's timestamp rule: aware, and a date that can be shown again."""


def _stream_id(value: str | None) -> str | None:
    problem = None if value is None else stream_id_problem(value)
    if problem is not None:
        raise ValueError(f"stream_id: {problem}")
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CarriedReadings(_Strict):
    """Readings sent with the label, scored now with the model in force."""

    # Checked value by value against the model by the scoring endpoint's rules (_carried).
    values: list[list[Any] | dict[str, Any]] = Field(
        min_length=1,
        description="Consecutive readings of one stream, each a list in the model's sensor "
        "order or an object keyed by sensor name. A model with window w labels readings "
        "w..m (the first w-1 give context).",
    )
    stream_id: str | None = Field(
        default=None, min_length=1, max_length=MAX_STREAM_ID, pattern=STREAM_ID_PATTERN
    )
    model: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        max_length=NAME_MAX_LENGTH,
        description="Model to score with; default model.",
    )
    timestamps: list[ReadingTime] | None = Field(
        default=None, description="One per reading; defaults to the time of the request."
    )

    _stream_id_rule = field_validator("stream_id")(_stream_id)

    @model_validator(mode="after")
    def _lengths(self) -> Self:
        if self.timestamps is not None and len(self.timestamps) != len(self.values):
            raise ValueError(
                f"timestamps has {len(self.timestamps)} entries for {len(self.values)} readings"
            )
        return self


class TimeRange(_Strict):
    """Every retained scored reading of a stream between start and end (inclusive)."""

    stream_id: str = Field(min_length=1, max_length=MAX_STREAM_ID, pattern=STREAM_ID_PATTERN)
    start: ReadingTime
    end: ReadingTime
    model: str | None = Field(default=None, pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)

    _stream_id_rule = field_validator("stream_id")(_stream_id)


class FeedbackRequest(_Strict):
    """One label for a set of readings, selected in exactly one of three ways."""

    label: Literal["normal", "anomaly"]
    client_label_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Makes the request idempotent: a retry with the same id and content gets "
        "the stored answer (200); the same id with different content is refused (409).",
    )
    note: str | None = Field(default=None, max_length=2000)
    reading_ids: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_READING_IDS,
        description="Ids returned by the scoring endpoint (kept for the configured retention).",
    )
    stream_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_STREAM_ID,
        pattern=STREAM_ID_PATTERN,
        description="With reading_ids: the stream they belong to. Needed when your own reading "
        "ids repeat across streams (per-device counters): such an id is refused as ambiguous "
        "without it.",
    )
    readings: CarriedReadings | None = None
    time_range: TimeRange | None = None

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            **exactly_one_of(
                "reading_ids", "readings", "time_range", only_with={"stream_id": "reading_ids"}
            ),
            "examples": [
                {"label": "normal", "client_label_id": "shift-7-0001", "reading_ids": ["r1a2b-17"]},
                {
                    "label": "normal",
                    "time_range": {
                        "stream_id": "pump-3",
                        "start": "2026-01-01T08:00:00Z",
                        "end": "2026-01-01T09:00:00Z",
                    },
                },
            ],
        },
    )

    @model_validator(mode="after")
    def _one_selector(self) -> Self:
        given = [
            name
            for name in ("reading_ids", "readings", "time_range")
            if getattr(self, name) is not None
        ]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of reading_ids, readings, time_range"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    _stream_id_rule = field_validator("stream_id")(_stream_id)

    @model_validator(mode="after")
    def _stream_scopes_reading_ids(self) -> Self:
        if self.stream_id is not None and self.reading_ids is None:
            raise ValueError(
                "stream_id scopes reading_ids; readings and time_range carry their own"
            )
        return self

    @field_validator("reading_ids")
    @classmethod
    def _distinct(cls, ids: list[str] | None) -> list[str] | None:
        """One reading, one label: a repeated id would count twice in metrics and triggers."""
        seen: set[str] = set()
        for reading_id in ids or ():
            if reading_id in seen:
                raise ValueError(f"reading id {reading_id!r} is given more than once")
            seen.add(reading_id)
        return ids


class LabelOut(BaseModel):
    id: int
    submission_id: int
    label: Literal["normal", "anomaly"]
    model: str
    model_version: str
    stream_id: str | None
    reading_id: str | None
    reading_time: datetime | None
    error: float
    sensor_errors: list[float] = Field(description="Squared error per sensor, manifest order.")
    threshold: float = Field(description="Threshold in force when the reading was scored.")
    threshold_version: int
    source: Literal["reading_id", "readings", "time_range"]
    scored_anomaly: bool = Field(description="The reading's error was above its threshold.")
    scored_alert: bool = Field(description="The reading's stream was in an alert when scored.")
    excluded_from_learning: str | None = Field(
        default=None,
        description="Why recalibration and drift never learn from this label (a maintenance "
        "window, the learning freeze), as decided when it was stored; None: they may, unless "
        "the reading is labelled anomaly, before or after: a reading anyone calls an anomaly "
        "is never learned from, whatever its other labels say.",
    )
    note: str | None
    author: str
    created_at: datetime

    @classmethod
    def of(cls, label: StoredLabel) -> LabelOut:
        return cls(
            id=label.id,
            submission_id=label.submission_id,
            label=label.label,
            model=label.model,
            model_version=label.model_version,
            stream_id=label.stream_id,
            reading_id=label.reading_id,
            reading_time=as_datetime(label.reading_time),
            error=label.error,
            sensor_errors=list(label.sensor_errors),
            threshold=label.threshold_value,
            threshold_version=label.threshold_version,
            source=label.source,
            scored_anomaly=label.scored_anomaly,
            scored_alert=label.scored_alert,
            excluded_from_learning=label.excluded_from_learning,
            note=label.note,
            author=label.author,
            created_at=datetime.fromtimestamp(label.created_at, tz=UTC),
        )


class FeedbackResponse(BaseModel):
    submission_id: int
    client_label_id: str | None
    author: str
    created_at: datetime
    count: int
    labels: list[LabelOut]

    @classmethod
    def of(cls, submission: Submission) -> FeedbackResponse:
        return cls(
            submission_id=submission.id,
            client_label_id=submission.client_label_id,
            author=submission.author,
            created_at=datetime.fromtimestamp(submission.created_at, tz=UTC),
            count=len(submission.labels),
            labels=[LabelOut.of(label) for label in submission.labels],
        )


class LabelPage(BaseModel):
    items: list[LabelOut]
    total: int = Field(description="Labels matching the filters, across all pages.")
    next_cursor: int | None = Field(description="Pass as `cursor` for the next page.")


router = APIRouter(prefix="/v1/feedback", tags=["feedback"], route_class=JsonBodyRoute)


def _carried(readings: CarriedReadings, desk: LabellingDesk) -> selections.CarriedReadings:
    model = desk.model(readings.model)
    desk.check_size(len(readings.values), "the request carries")
    matrix = matrix_of_rows(readings.values, model.sensors, model.sensor_index, "readings.values")
    return selections.CarriedReadings(
        model=model.name,
        stream_id=readings.stream_id,
        values=matrix,
        timestamps=None
        if readings.timestamps is None
        else [unix_seconds(t) for t in readings.timestamps],
    )


def _replayed(response: Response, submission: Submission) -> FeedbackResponse:
    """A retry gets the stored answer, byte for byte the same body, with 200 and a header."""
    response.status_code = 200
    response.headers["Idempotent-Replayed"] = "true"
    return FeedbackResponse.of(submission)


@router.post(
    "",
    status_code=201,
    response_model=FeedbackResponse,
    summary="Label readings normal or anomaly",
    responses={
        200: {
            "description": "A retry with the same client label id and content: the stored "
            "answer, with header Idempotent-Replayed: true."
        },
        **problems(
            s404="A reading id is unknown or past its retention, the time range holds no "
            "scored reading, or the model is not served.",
            s409="The client label id was used for different content, or a reading id is "
            "carried by several streams' readings (add stream_id).",
        ),
    },
)
async def post_feedback(
    body: FeedbackRequest,
    response: Response,
    principal: FeedbackPrincipal,
    desk: DeskDep,
) -> FeedbackResponse:
    request = body.model_dump(mode="json")
    if request["stream_id"] is None:
        del request["stream_id"]  # as before the field existed: stored retries still replay
    content_hash = content_fingerprint({"author": principal.name, "request": request})
    if body.client_label_id is not None:
        stored = await desk.replay(body.client_label_id, content_hash)
        if stored is not None:
            return _replayed(response, stored)
    selection: Selection
    if body.reading_ids is not None:
        selection = selections.ReadingIds(body.reading_ids, stream_id=body.stream_id)
    elif body.time_range is not None:
        window = body.time_range
        selection = selections.TimeRange(
            window.stream_id, unix_seconds(window.start), unix_seconds(window.end), window.model
        )
    else:
        assert body.readings is not None
        selection = _carried(body.readings, desk)
    submission = await desk.submit(
        selection,
        body.label,
        body.note,
        author=principal.name,
        client_label_id=body.client_label_id,
        content_hash=content_hash,
    )
    if submission.replayed:  # an identical retry won the race to the store
        return _replayed(response, submission)
    return FeedbackResponse.of(submission)


@router.get("", response_model=LabelPage, summary="List labels, newest first")
async def list_feedback(
    _: FeedbackPrincipal,
    desk: DeskDep,
    model: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)] = None,
    label: Literal["normal", "anomaly"] | None = None,
    stream_id: str | None = None,
    author: str | None = None,
    since: Annotated[DateTime | None, Query(description="Labels given at or after this.")] = None,
    until: Annotated[DateTime | None, Query(description="Labels given before this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[
        int | None, Query(ge=1, le=MAX_CLIENT_ID, description="`next_cursor` of the last page.")
    ] = None,
) -> LabelPage:
    filters = LabelFilter(
        model=model,
        label=label,
        stream_id=stream_id,
        author=author,
        since=None if since is None else unix_seconds(since),
        until=None if until is None else unix_seconds(until),
    )
    page = await desk.list_labels(filters, limit=limit, cursor=cursor)
    return LabelPage(
        items=[LabelOut.of(r) for r in page.items], total=page.total, next_cursor=page.next_cursor
    )
