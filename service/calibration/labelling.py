"""The labelling desk: operator labels for scored readings, durable and idempotent, and the
queue of readings awaiting review.

A label selects its readings in one of three ways (``service/calibration/selections.py``:
by reading id, by time range, or carried in the request); the desk turns them into
:class:`NewLabel` records with the errors and decisions the scorer made (or makes now, for
carried readings) and stores them.

What is learned from (recalibration, the drift sample) is decided here, per label:

- a reading inside an ``exclude_from_learning`` maintenance window is never learned from,
  whatever its label;
- learning freeze: a reading scored while its stream was in alert is not learned from when
  it was labelled as part of a time range (a fault that lasts must not become the normal
  because someone labelled the hour it fell in); an operator who labels that reading
  itself, by its id, releases it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from service.calibration.keeper import ThresholdKeeper
from service.calibration.records import (
    LEARNING_FREEZE,
    LabelFilter,
    LabelSource,
    LabelValue,
    NewLabel,
    StoredLabel,
    Submission,
)
from service.calibration.selections import (
    AmbiguousReading,
    CarriedReadings,
    EmptyTimeRange,
    NothingToLabel,
    ReadingIds,
    Selection,
    TimeRange,
    UnknownReading,
    UnscoredReading,
    carried_labels,
)
from service.calibration.store import FeedbackStore, IdempotencyConflict
from service.errors import BatchTooLarge, ServiceError
from service.metrics import Metrics
from service.scoring.decision import WindowMatch
from service.scoring.reading_chunk import RecentReading
from service.scoring.recent import AmbiguousReadingId, RecentReadings
from service.scoring.registry import LoadedModel, ModelRegistry
from service.scoring.shared_readings import SharedFinds, SharedReadings
from service.settings import Settings

# The review queue checks alerts against the store in pages of at least this many, and
# gives up after this many pages: the queue then says more may be waiting.
REVIEW_PAGE_MIN = 100
REVIEW_SCAN_PAGES = 20


class LabelConflict(ServiceError):
    status_code = 409
    slug = "label-id-conflict"
    title = "Client label id reused for different content"


@dataclass(frozen=True, slots=True)
class ReviewQueue:
    model: str
    alerts: list[RecentReading]
    audit_sample: list[RecentReading]
    # Unlabelled alerts beyond those listed may be waiting (older than the listed ones).
    more_alerts: bool = False

    @property
    def size(self) -> int:
        return len(self.alerts) + len(self.audit_sample)


@dataclass(frozen=True, slots=True)
class LabelPage:
    items: list[StoredLabel]
    total: int
    next_cursor: int | None  # None on the last page


class LabellingDesk:
    """Labels in, review queue out. ``labels_stored`` hears how many new labels were
    stored (the recalibration task's label trigger)."""

    def __init__(
        self,
        *,
        store: FeedbackStore,
        models: ModelRegistry,
        keeper: ThresholdKeeper,
        recent: RecentReadings,
        metrics: Metrics,
        settings: Settings,
        labels_stored: Callable[[int], None],
        shared: SharedReadings | None = None,
        clock: Callable[[], float] = time.time,
        rng: np.random.Generator | None = None,
        windows: Callable[[str, str | None, float], WindowMatch | None] | None = None,
    ) -> None:
        self.windows = windows
        self.store = store
        self.models = models
        self.keeper = keeper
        self.recent = recent
        self.metrics = metrics
        self.settings = settings
        self.labels_stored = labels_stored
        self.shared = shared  # other replicas' readings, by id (with Redis)
        self.clock = clock
        self.started = clock()  # readings scored before are gone without shared state
        self.rng = rng if rng is not None else np.random.default_rng()

    # --- submitting ---------------------------------------------------------------------

    def model(self, name: str | None) -> LoadedModel:
        """The served model a label names (the default one for None)."""
        return self.models.get(name)

    def check_size(self, count: int, what: str) -> None:
        limit = self.settings.max_batch_readings
        if count > limit:
            raise BatchTooLarge(
                f"{what} {count} readings; one feedback request labels at most {limit} "
                "(split it, e.g. into shorter time ranges)"
            )

    async def replay(self, client_label_id: str, content_hash: str) -> Submission | None:
        """An earlier identical submission, so a retry skips lookups and scoring."""
        found = await asyncio.to_thread(self.store.find_submission, client_label_id)
        if found is None:
            return None
        stored_hash, submission = found
        if stored_hash != content_hash:
            raise LabelConflict(
                f"client label id {client_label_id!r} was already used for a different "
                "submission; use a new id"
            )
        return submission

    async def submit(
        self,
        selection: Selection,
        label: LabelValue,
        note: str | None,
        *,
        author: str,
        client_label_id: str | None,
        content_hash: str,
    ) -> Submission:
        """Durable before it returns (the store commits with a full fsync); ``replayed``
        when an identical retry won the race to the store."""
        found = await self.fetch_shared(selection)
        labels = self.labels_for(selection, label, note, found)
        try:
            submission = await asyncio.to_thread(
                self.store.submit_labels,
                labels,
                author=author,
                client_label_id=client_label_id,
                content_hash=content_hash,
            )
        except IdempotencyConflict as exc:
            raise LabelConflict(str(exc) + "; use a new id") from exc
        if not submission.replayed:
            for stored in submission.labels:
                self.metrics.feedback.labels(stored.model, stored.label).inc()
            self.labels_stored(len(submission.labels))
        return submission

    async def fetch_shared(self, selection: Selection) -> SharedFinds | None:
        """With shared state, the readings named by id, from every replica's (each scored
        reading is written there before its reply); None: look in this process."""
        if self.shared is None or not isinstance(selection, ReadingIds):
            return None
        return await self.shared.find(list(selection.reading_ids), selection.stream_id)

    def labels_for(
        self,
        selection: Selection,
        label: LabelValue,
        note: str | None,
        shared: SharedFinds | None = None,
    ) -> list[NewLabel]:
        """Event loop only (reads the recent-readings buffer, calls the model). ``shared``:
        readings by id that other replicas scored (:meth:`fetch_shared`)."""
        if isinstance(selection, ReadingIds):
            return self._by_reading_ids(selection, label, note, shared)
        if isinstance(selection, TimeRange):
            return self._by_time_range(selection, label, note)
        return self._by_carried_readings(selection, label, note)

    @staticmethod
    def learning_exclusion(reading: RecentReading, source: LabelSource) -> str | None:
        """Why a label of this reading must not be learned from (None: it may be)."""
        if reading.excluded_by is not None:
            return f"maintenance window {reading.excluded_by}"
        if reading.alert and source != "reading_id":
            return LEARNING_FREEZE
        return None

    def _from_reading(
        self, reading: RecentReading, label: LabelValue, source: LabelSource, note: str | None
    ) -> NewLabel:
        assert reading.error is not None and reading.squared_errors is not None
        return NewLabel(
            model=reading.model,
            model_version=reading.model_version,
            label=label,
            error=reading.error,
            sensor_errors=tuple(float(v) for v in reading.squared_errors),
            threshold_value=reading.threshold,
            threshold_version=reading.threshold_version,
            source=source,
            stream_id=reading.stream_id,
            reading_id=reading.reading_id,
            reading_time=reading.timestamp,
            note=note,
            scored_anomaly=reading.anomaly,
            scored_alert=reading.alert,
            excluded_from_learning=self.learning_exclusion(reading, source),
            # Kept over the threshold in force when scored: back in the error's units.
            score=None if reading.smoothed is None else reading.smoothed * reading.threshold,
        )

    def _by_reading_ids(
        self,
        selection: ReadingIds,
        label: LabelValue,
        note: str | None,
        shared: SharedFinds | None,
    ) -> list[NewLabel]:
        stream_id = selection.stream_id
        labels: list[NewLabel] = []
        missing: list[str] = []
        warming: list[str] = []
        ambiguous: list[str] = []
        for reading_id in selection.reading_ids:
            try:
                if shared is None:
                    reading = self.recent.get(reading_id, stream_id)
                else:
                    found = shared.get(reading_id)
                    if isinstance(found, AmbiguousReadingId):
                        raise found
                    reading = found
            except AmbiguousReadingId as exc:
                ambiguous.append(f"{reading_id!r} (streams {', '.join(exc.streams[:5])})")
                continue
            if reading is None:
                missing.append(reading_id)
            elif reading.error is None:
                warming.append(reading_id)
            else:
                labels.append(self._from_reading(reading, label, "reading_id", note))
        if ambiguous:
            raise AmbiguousReading(
                f"reading id(s) {', '.join(ambiguous[:10])} are carried by readings of several "
                "streams: add stream_id to say which stream's readings you mean"
            )
        if missing:
            where = "" if stream_id is None else f" in stream {stream_id!r}"
            kept = "kept" if self.shared is None else "every replica keeps together"
            restart = (
                ""
                if self.shared is not None
                else ", or scored before this process started at "
                f"{datetime.fromtimestamp(self.started, UTC):%Y-%m-%dT%H:%M:%SZ} (it keeps "
                "them in memory)"
            )
            raise UnknownReading(
                f"reading id(s) {', '.join(repr(r) for r in missing[:10])} are unknown{where}, "
                f"older than the {self.settings.recent_retention_s:g} s retention, beyond the "
                f"{self.settings.recent_max_readings} most recent readings {kept}{restart}: "
                "send the readings themselves instead"
            )
        named = ", ".join(repr(r) for r in warming[:10])
        if warming and not labels:
            raise NothingToLabel(
                f"reading id(s) {named} were not scored (their stream was warming up)"
            )
        if warming:
            raise UnscoredReading(
                f"reading id(s) {named} were not scored (their stream was warming up) and "
                f"cannot be labelled; nothing was stored: send the {len(labels)} scored "
                "reading(s) without them"
            )
        return labels

    def _by_time_range(
        self, selection: TimeRange, label: LabelValue, note: str | None
    ) -> list[NewLabel]:
        model = self.models.get(selection.model)
        stream_id, start, end = selection.stream_id, selection.start, selection.end
        if end < start:
            # Well formed, and empty: answered as a range with no reading in it is.
            raise EmptyTimeRange("time_range.end is before time_range.start: it holds no reading")
        readings = self.recent.stream_readings(stream_id, start, end, model=model.name)
        self.check_size(len(readings), "the time range holds")
        if not readings:
            raise EmptyTimeRange(
                f"stream {stream_id!r} has no scored reading of model {model.name!r} between "
                f"{start:.3f} and {end:.3f} among the retained readings"
            )
        return [self._from_reading(r, label, "time_range", note) for r in readings]

    def _by_carried_readings(
        self, carried: CarriedReadings, label: LabelValue, note: str | None
    ) -> list[NewLabel]:
        model = self.models.get(carried.model)
        self.check_size(len(carried.values), "the request carries")
        return carried_labels(
            model,
            self.keeper.current(model),
            carried,
            label,
            note,
            settings=self.settings,
            now=self.clock(),
            windows=self.windows,
        )

    # --- reading back -------------------------------------------------------------------

    async def list_labels(
        self, filters: LabelFilter, *, limit: int, cursor: int | None
    ) -> LabelPage:
        """Newest first; ``cursor`` is the ``next_cursor`` of the previous page."""
        rows = await asyncio.to_thread(
            self.store.list_labels, filters, limit=limit + 1, before_id=cursor
        )
        total = await asyncio.to_thread(self.store.count_labels, filters)
        if len(rows) > limit:
            return LabelPage(items=rows[:limit], total=total, next_cursor=rows[limit - 1].id)
        return LabelPage(items=rows, total=total, next_cursor=None)

    async def review_queue(
        self, model_name: str | None, *, stream_id: str | None = None
    ) -> ReviewQueue:
        """The newest alerts nobody labelled yet plus a uniform sample of unflagged readings
        (of one stream, when given), leaving out readings someone already labelled; sets the
        queue's gauge for the whole model's queue."""
        model = self.models.get(model_name)
        s = self.settings
        alerts, more = await self._unlabelled_alerts(model.name, stream_id)
        audit = self.recent.audit_sample(
            s.review_audit_size, self.rng, model=model.name, stream_id=stream_id
        )
        pairs = [(r.stream_id, r.reading_id) for r in audit]
        done = await asyncio.to_thread(self.store.labelled_readings, model.name, pairs)
        queue = ReviewQueue(
            model=model.name,
            alerts=alerts,
            audit_sample=[r for r in audit if (r.stream_id, r.reading_id) not in done],
            more_alerts=more,
        )
        if stream_id is None:
            self.metrics.review_queue.labels(model.name).set(queue.size)
        return queue

    async def _unlabelled_alerts(
        self, model: str, stream_id: str | None
    ) -> tuple[list[RecentReading], bool]:
        """Up to ``review_alert_limit`` of the newest alerts nobody labelled, and whether
        more may be waiting. Labelled ones pile up at the top as operators work down the
        queue, so the alerts are checked against the store a page at a time until the list
        is full; at most :data:`REVIEW_SCAN_PAGES` pages, so one request stays bounded
        however many were labelled (then more are said to be waiting)."""
        limit = self.settings.review_alert_limit
        if limit == 0:  # alerts are not reviewed here: nothing to list, nothing waiting
            return [], False
        size = max(limit, REVIEW_PAGE_MIN)
        found: list[RecentReading] = []
        before: int | None = None
        for _ in range(REVIEW_SCAN_PAGES):
            page, before = self.recent.alert_page(
                model=model, limit=size, before=before, stream_id=stream_id
            )
            pairs = [(r.stream_id, r.reading_id) for r in page]
            done = (
                await asyncio.to_thread(self.store.labelled_readings, model, pairs)
                if pairs
                else set()
            )
            for reading in page:
                if (reading.stream_id, reading.reading_id) in done:
                    continue
                if len(found) == limit:
                    return found, True
                found.append(reading)
            if before is None:
                return found, False
        return found, True
