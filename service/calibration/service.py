"""Feedback → store → recalibrator → threshold board: the calibration loop's orchestration.

Framework-free: routes and the lifespan call these methods. Store calls are blocking
(SQLite fsyncs on commit) and run in worker threads; everything that touches the scoring
path's in-memory state (recent readings, the threshold board) runs on the event loop,
which is the only thread that mutates them. Threshold changes are serialised by one lock,
so the board always ends on the newest version the store holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.calibration.drift import RECOMMENDATIONS, DriftPolicy, DriftReport, drift_report
from service.calibration.recalibrator import (
    Candidate,
    RecalibrationLoop,
    RecalibrationPolicy,
    candidate_threshold,
    review_weights,
)
from service.calibration.store import (
    FeedbackStore,
    IdempotencyConflict,
    LabelSource,
    LabelValue,
    NewLabel,
    NormalSample,
    PendingAlreadyDecided,
    PendingNotFound,
    PendingThreshold,
    RecalibrationRun,
    SqliteFeedbackStore,
    StoredLabel,
    Submission,
    ThresholdVersion,
    ThresholdVersionNotFound,
)
from service.errors import BatchTooLarge, InvalidRequest, ServiceError, UnknownModel
from service.metrics import Metrics
from service.scoring.pipeline import reject_overflow
from service.scoring.recent import AmbiguousReadingId, RecentReading, RecentReadings
from service.scoring.registry import LoadedModel, ModelRegistry
from service.scoring.thresholds import ThresholdBoard, ThresholdSnapshot
from service.settings import Settings

MANUAL_RANGE = 1e6  # a hand-set threshold stays within this factor of the training baseline
logger = logging.getLogger(__name__)


class LabelConflict(ServiceError):
    status_code = 409
    slug = "label-id-conflict"
    title = "Client label id reused for different content"


class UnknownReading(ServiceError):
    status_code = 404
    slug = "unknown-reading"
    title = "Reading not found among recently scored readings"


class AmbiguousReading(ServiceError):
    status_code = 409
    slug = "ambiguous-reading-id"
    title = "Several streams' readings carry this reading id"


class NothingToLabel(ServiceError):
    status_code = 422
    slug = "nothing-to-label"
    title = "The feedback selects no scored reading"


class PendingMissing(ServiceError):
    status_code = 404
    slug = "unknown-pending-threshold"
    title = "No such pending threshold"


class PendingClosed(ServiceError):
    status_code = 409
    slug = "pending-threshold-closed"
    title = "Pending threshold already decided"


class VersionMissing(ServiceError):
    status_code = 404
    slug = "unknown-threshold-version"
    title = "No such threshold version"


class VersionNotApplicable(ServiceError):
    status_code = 409
    slug = "threshold-version-not-applicable"
    title = "Threshold version belongs to another model version"


@dataclass(frozen=True, slots=True)
class ReadingsToLabel:
    """Readings carried in a feedback request: raw values ``(m, n_sensors)`` in manifest order,
    consecutive readings of one stream (a windowed model scores row i from rows i-w+1..i)."""

    model: str | None
    stream_id: str | None
    values: np.ndarray
    timestamps: Sequence[float] | None


@dataclass(frozen=True, slots=True)
class ReviewQueue:
    model: str
    alerts: list[RecentReading]
    audit_sample: list[RecentReading]

    @property
    def size(self) -> int:
        return len(self.alerts) + len(self.audit_sample)


class CalibrationService:
    """Owns the feedback store's use, threshold versions and their publication."""

    def __init__(
        self,
        *,
        store: FeedbackStore,
        registry: ModelRegistry,
        board: ThresholdBoard,
        recent: RecentReadings,
        metrics: Metrics,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.store = store
        self.registry = registry
        self.board = board
        self.recent = recent
        self.metrics = metrics
        self.settings = settings
        self.clock = clock
        self.rng = rng if rng is not None else np.random.default_rng()
        self.drift_policy = DriftPolicy(
            alpha=settings.drift_alpha,
            min_effect=settings.drift_min_effect,
            retrain_effect=settings.drift_retrain_effect,
            min_samples=settings.drift_min_samples,
        )
        self._threshold_lock = asyncio.Lock()
        self.loop = RecalibrationLoop(
            self._scheduled_run,
            interval_s=settings.recalibration_interval_s,
            label_trigger=settings.recalibration_label_trigger,
        )
        self.last_drift: dict[str, DriftReport] = {}

    # --- start-up and publication -------------------------------------------------------

    @classmethod
    async def start(
        cls,
        *,
        registry: ModelRegistry,
        board: ThresholdBoard,
        recent: RecentReadings,
        metrics: Metrics,
        settings: Settings,
    ) -> CalibrationService:
        """Open the store, restore each model's threshold from it, judge drift once, and
        start the background task (the lifespan calls :meth:`close` on shutdown)."""
        store = await asyncio.to_thread(SqliteFeedbackStore, settings.store_path)
        service = cls(
            store=store,
            registry=registry,
            board=board,
            recent=recent,
            metrics=metrics,
            settings=settings,
        )
        try:
            await asyncio.to_thread(service.restore_thresholds)
            for model in registry.models():
                await service.check_drift(model.name)
        except BaseException:
            store.close()
            raise
        if settings.recalibration_enabled:
            service.loop.start()
        return service

    async def close(self) -> None:
        await self.loop.stop()
        await asyncio.to_thread(self.store.close)

    async def store_problem(self) -> str | None:
        """Readiness: None when the store answers."""
        try:
            await asyncio.to_thread(self.store.ping)
        except Exception as exc:
            return f"feedback store unreachable: {type(exc).__name__}: {exc}"
        return None

    def policy_for(self, model: LoadedModel) -> RecalibrationPolicy:
        s = self.settings
        return RecalibrationPolicy(
            method=s.recalibration_method,
            quantile=s.recalibration_quantile or model.manifest.threshold.quantile,
            mad_k=s.recalibration_mad_k,
            min_samples=s.recalibration_min_samples,
            max_relative_change=s.recalibration_max_change,
            min_relative_change=s.recalibration_min_change,
        )

    def _publish(self, version: ThresholdVersion) -> None:
        """Swap the snapshot the decision reads and report it; called after the store commit."""
        snapshot = ThresholdSnapshot(
            value=version.value, version=version.version, baseline=version.baseline
        )
        self.board.set(version.model, snapshot)  # its gauges read the board when collected

    def _publish_pending(self, model: str) -> None:
        open_pending = self.store.open_pending(model)
        self.metrics.threshold_pending.labels(model).set(0 if open_pending is None else 1)

    def restore_thresholds(self, models: Sequence[LoadedModel] | None = None) -> None:
        """Blocking (call at start-up or from a thread): the latest stored version of each
        loaded model version, or its manifest threshold persisted as a new version."""
        for model in models if models is not None else self.registry.models():
            version = self.store.ensure_threshold(
                model.name,
                model.version,
                value=model.manifest.threshold.value,
                reason=f"training threshold from the manifest of {model.name}/{model.version}",
            )
            self._publish(version)
            self._publish_pending(model.name)
            logger.info(
                "threshold for %s: version %d = %.6g (%s)",
                model.name,
                version.version,
                version.value,
                version.source,
            )

    async def swap_models(
        self, reload: Callable[[], Sequence[LoadedModel]]
    ) -> Sequence[LoadedModel]:
        """Run a model reload and restore its thresholds under the threshold lock: no
        recalibration, approval or hand-set value computed for the old model can then be
        published over the new model's threshold. Blocking inside, on purpose: no request
        sees the new model with the old threshold."""
        async with self._threshold_lock:
            loaded = reload()
            self.restore_thresholds(loaded)
        return loaded

    async def sync_from_store(self) -> None:
        """Adopt versions another replica wrote (a shared PostgreSQL store): cheap, per run."""
        async with self._threshold_lock:
            for model in self.registry.models():
                latest = await asyncio.to_thread(
                    self.store.latest_threshold, model.name, model.version
                )
                if latest is not None and (
                    model.name not in self.board
                    or self.board.get(model.name).version != latest.version
                ):
                    self._publish(latest)

    def _model(self, name: str | None) -> LoadedModel:
        return self.registry.get(name)

    def _current(self, model: LoadedModel) -> ThresholdSnapshot:
        if model.name not in self.board:
            raise UnknownModel(f"model {model.name!r} has no threshold in force")
        return self.board.get(model.name)

    # --- feedback -----------------------------------------------------------------------

    def _label_from_reading(
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
        )

    def labels_for_reading_ids(
        self,
        reading_ids: Sequence[str],
        label: LabelValue,
        note: str | None,
        *,
        stream_id: str | None = None,
    ) -> list[NewLabel]:
        """Event-loop only (reads the recent-readings buffer). ``stream_id`` picks the stream
        when clients reuse their own reading ids across streams."""
        labels: list[NewLabel] = []
        missing: list[str] = []
        warming: list[str] = []
        ambiguous: list[str] = []
        for reading_id in reading_ids:
            try:
                reading = self.recent.get(reading_id, stream_id)
            except AmbiguousReadingId as exc:
                ambiguous.append(f"{reading_id!r} (streams {', '.join(exc.streams[:5])})")
                continue
            if reading is None:
                missing.append(reading_id)
            elif reading.error is None:
                warming.append(reading_id)
            else:
                labels.append(self._label_from_reading(reading, label, "reading_id", note))
        if ambiguous:
            raise AmbiguousReading(
                f"reading id(s) {', '.join(ambiguous[:10])} are carried by readings of several "
                "streams: add stream_id to say which stream's readings you mean"
            )
        if missing:
            where = "" if stream_id is None else f" in stream {stream_id!r}"
            raise UnknownReading(
                f"reading id(s) {', '.join(repr(r) for r in missing[:10])} are unknown{where}, "
                f"older than the {self.settings.recent_retention_s:g} s retention or beyond the "
                f"{self.settings.recent_max_readings} most recent readings kept: send the "
                "readings themselves instead"
            )
        if warming:
            raise NothingToLabel(
                f"reading id(s) {', '.join(repr(r) for r in warming[:10])} were not scored "
                "(their stream was warming up)"
            )
        return labels

    def labels_for_time_range(
        self,
        stream_id: str,
        start: float,
        end: float,
        model_name: str | None,
        label: LabelValue,
        note: str | None,
    ) -> list[NewLabel]:
        """Event-loop only. Every retained scored reading of the stream in [start, end]."""
        model = self._model(model_name)
        readings = self.recent.stream_readings(stream_id, start, end, model=model.name)
        self.check_size(len(readings), "the time range holds")
        if not readings:
            raise NothingToLabel(
                f"stream {stream_id!r} has no scored reading of model {model.name!r} between "
                f"{start:.3f} and {end:.3f} among the retained readings"
            )
        return [self._label_from_reading(r, label, "time_range", note) for r in readings]

    def labels_for_readings(
        self, carried: ReadingsToLabel, label: LabelValue, note: str | None
    ) -> list[NewLabel]:
        """Score carried readings with the model now (event loop: the engine is not shared
        across threads) and label each one that has a full window."""
        model = self._model(carried.model)
        self.check_size(len(carried.values), "the request carries")
        values = np.ascontiguousarray(carried.values, dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != model.manifest.n_sensors:
            raise InvalidRequest(
                f"readings must have {model.manifest.n_sensors} values each for model "
                f"{model.name!r}, got shape {values.shape}"
            )
        window = model.window
        if len(values) < window:
            raise NothingToLabel(
                f"model {model.name!r} reads windows of {window} readings: send at least "
                f"{window} consecutive readings (the first {window - 1} give context only)"
            )
        if window == 1:
            windows = values.reshape(len(values), 1, -1)
        else:
            view = np.lib.stride_tricks.sliding_window_view(values, (window, values.shape[1]))
            windows = np.ascontiguousarray(view[:, 0])
        squared, _ = model.engine.score(windows)
        squared = np.asarray(squared, dtype=np.float64)
        if not np.isfinite(squared).all():
            reject_overflow(squared, model, window - 1)  # a label with an infinite error
        snapshot = self._current(model)
        now = self.clock()
        labels = []
        for i, row in enumerate(squared):
            reading_index = i + window - 1
            timestamp = (
                float(carried.timestamps[reading_index]) if carried.timestamps is not None else now
            )
            labels.append(
                NewLabel(
                    model=model.name,
                    model_version=model.version,
                    label=label,
                    error=float(row.mean()),
                    sensor_errors=tuple(float(v) for v in row),
                    threshold_value=snapshot.value,
                    threshold_version=snapshot.version,
                    source="readings",
                    stream_id=carried.stream_id,
                    reading_id=None,
                    reading_time=timestamp,
                    note=note,
                    scored_anomaly=float(row.mean()) > snapshot.value,
                )
            )
        return labels

    def check_size(self, count: int, what: str) -> None:
        limit = self.settings.max_batch_readings
        if count > limit:
            raise BatchTooLarge(
                f"{what} {count} readings; one feedback request labels at most {limit} "
                "(split it, e.g. into shorter time ranges)"
            )

    def replay(self, client_label_id: str, content_hash: str) -> Submission | None:
        """Blocking. An earlier identical submission, so a retry skips lookups and scoring."""
        found = self.store.find_submission(client_label_id)
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
        labels: Sequence[NewLabel],
        *,
        author: str,
        client_label_id: str | None,
        content_hash: str,
    ) -> Submission:
        """Durable before it returns (the store commits with a full fsync)."""
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
            self.loop.notify_labels(len(submission.labels))
        return submission

    def review_queue(self, model_name: str | None) -> ReviewQueue:
        """Event-loop only. Recent alerts plus a uniform sample of unflagged readings,
        leaving out readings someone already labelled."""
        model = self._model(model_name)
        s = self.settings
        alerts = self.recent.alerts(model=model.name, limit=s.review_alert_limit)
        audit = self.recent.audit_sample(s.review_audit_size, self.rng, model=model.name)
        return ReviewQueue(model=model.name, alerts=alerts, audit_sample=audit)

    async def unlabelled(self, queue: ReviewQueue) -> ReviewQueue:
        pairs = [(r.stream_id, r.reading_id) for r in (*queue.alerts, *queue.audit_sample)]
        done = await asyncio.to_thread(self.store.labelled_readings, queue.model, pairs)
        result = ReviewQueue(
            model=queue.model,
            alerts=[r for r in queue.alerts if (r.stream_id, r.reading_id) not in done],
            audit_sample=[r for r in queue.audit_sample if (r.stream_id, r.reading_id) not in done],
        )
        self.metrics.review_queue.labels(queue.model).set(result.size)
        return result

    # --- recalibration ------------------------------------------------------------------

    async def _scheduled_run(self, trigger: str) -> None:
        await self.sync_from_store()
        for model in self.registry.models():
            try:
                await self.recalibrate(model.name, trigger=trigger)
                await self.check_drift(model.name)
                await self.unlabelled(self.review_queue(model.name))  # refreshes its gauge
            except Exception:
                # Recorded and counted as a failed run; the other models still get theirs.
                logger.exception("scheduled calibration of %s failed", model.name)

    async def recalibrate(self, model_name: str | None, *, trigger: str) -> RecalibrationRun:
        """One step: sample the window, compute the candidate, apply / hold / skip, record."""
        started = self.clock()
        async with self._threshold_lock:
            # Resolved under the lock: a reload (which takes it too) can't swap the model
            # between sampling its labels and publishing the threshold computed from them.
            model = self._model(model_name)
            current = self._current(model)
            try:
                sample = await asyncio.to_thread(
                    self.store.normal_sample,
                    model.name,
                    model.version,
                    since=started - self.settings.recalibration_window_s,
                    limit=self.settings.recalibration_window_labels,
                )
                policy = self.policy_for(model)
                share, share_from = self._flagged_share(model, sample, policy)
                candidate = candidate_threshold(
                    sample.errors,
                    current.value,
                    policy,
                    weights=review_weights(sample.flagged, share),
                )
                candidate.statistics.update(
                    {
                        "flagged_share": share,
                        "flagged_share_from": share_from,
                        "n_flagged": sum(sample.flagged),
                    }
                )
                run = await asyncio.to_thread(self._conclude, model, current, candidate, trigger)
            except Exception as exc:
                logger.exception("recalibration of %s failed", model.name)
                self.metrics.recalibration_runs.labels(model.name, "failed").inc()
                self.metrics.last_recalibration.labels(model.name).set(self.clock())
                with contextlib.suppress(Exception):  # the store itself may be what failed
                    await asyncio.to_thread(
                        self.store.record_run,
                        model=model.name,
                        model_version=model.version,
                        trigger=trigger,
                        outcome="failed",
                        current_value=current.value,
                        candidate=None,
                        n_samples=0,
                        message=f"{type(exc).__name__}: {exc}",
                        statistics={},
                        threshold_version=None,
                        pending_id=None,
                        started_at=started,
                    )
                raise
            if run.outcome == "applied" and run.threshold_version is not None:
                self._publish(
                    await asyncio.to_thread(
                        self.store.threshold_version, model.name, run.threshold_version
                    )
                )
            await asyncio.to_thread(self._publish_pending, model.name)
        self.metrics.recalibration_runs.labels(model.name, run.outcome).inc()
        self.metrics.last_recalibration.labels(model.name).set(run.finished_at)
        logger.info("recalibration of %s (%s): %s", model.name, trigger, run.message)
        return run

    def _flagged_share(
        self, model: LoadedModel, sample: NormalSample, policy: RecalibrationPolicy
    ) -> tuple[float, str]:
        """How much of the normal error distribution the flagged readings stand for.

        From the representative labels (time ranges, carried readings) when there are
        any: they hold flagged and unflagged readings in the stream's own proportion.
        Else from the retained scored readings of the model (true anomalies among them
        count as flagged: the relative-change cap guards that case). Else the nominal
        ``1 - quantile``, which leaves confirmed false alarms no more weight than a
        correct threshold would give them."""
        pairs = zip(sample.flagged, sample.representative, strict=True)
        representative = [flagged for flagged, kept_whole in pairs if kept_whole]
        if representative:
            return sum(representative) / len(representative), "representative labels"
        measured = self.recent.flagged_share(model.name)
        if measured is not None:
            return measured, "retained scored readings"
        return 1.0 - policy.quantile, "nominal"

    def _conclude(
        self,
        model: LoadedModel,
        current: ThresholdSnapshot,
        candidate: Candidate,
        trigger: str,
    ) -> RecalibrationRun:
        """Blocking: persist the version or the pending, then the run that explains it."""
        statistics: dict[str, Any] = dict(candidate.statistics)
        statistics["trigger"] = trigger
        version_number: int | None = None
        pending_id: int | None = None
        if candidate.outcome == "applied":
            assert candidate.value is not None
            version = self.store.append_threshold(
                model.name,
                model.version,
                value=candidate.value,
                baseline=current.baseline,
                source="recalibration",
                reason=candidate.message,
                author="recalibrator",
                statistics=statistics,
            )
            version_number = version.version
        elif candidate.outcome == "pending":
            assert candidate.value is not None and candidate.relative_change is not None
            pending_id = self._hold(model, current, candidate, statistics).id
        return self.store.record_run(
            model=model.name,
            model_version=model.version,
            trigger=trigger,
            outcome=candidate.outcome,
            current_value=current.value,
            candidate=candidate.value,
            n_samples=candidate.n_samples,
            message=candidate.message,
            statistics=statistics,
            threshold_version=version_number,
            pending_id=pending_id,
            started_at=self.clock(),
        )

    def _hold(
        self,
        model: LoadedModel,
        current: ThresholdSnapshot,
        candidate: Candidate,
        statistics: dict[str, Any],
    ) -> PendingThreshold:
        """Keep the open pending when the new candidate is essentially the same one, so an
        admin reviewing it is not raced by the next interval."""
        assert candidate.value is not None and candidate.relative_change is not None
        existing = self.store.open_pending(model.name)
        tolerance = self.settings.recalibration_min_change
        if (
            existing is not None
            and existing.current_version == current.version
            and abs(existing.candidate / candidate.value - 1.0) <= tolerance
        ):
            return existing
        current_version = self.store.threshold_version(model.name, current.version)
        return self.store.create_pending(
            model.name,
            model.version,
            candidate=candidate.value,
            current=current_version,
            relative_change=candidate.relative_change,
            reason=candidate.message,
            statistics=statistics,
        )

    # --- admin --------------------------------------------------------------------------

    async def set_by_hand(
        self, model_name: str, value: float, *, reason: str, author: str
    ) -> ThresholdVersion:
        if not (math.isfinite(value) and value > 0):
            raise InvalidRequest(f"threshold must be a positive finite number, got {value}")
        async with self._threshold_lock:
            model = self._model(model_name)
            current = self._current(model)
            low, high = current.baseline / MANUAL_RANGE, current.baseline * MANUAL_RANGE
            if not low <= value <= high:
                # error / threshold must stay a finite, meaningful score: a denormal threshold
                # turns every score into infinity (null in JSON), a huge one silences the model.
                raise InvalidRequest(
                    f"threshold {value!r} is outside [{low:.6g}, {high:.6g}]: a hand-set value "
                    f"must lie within a factor {MANUAL_RANGE:.0e} of the training baseline "
                    f"{current.baseline:.6g}"
                )
            version = await asyncio.to_thread(
                self.store.append_threshold,
                model.name,
                model.version,
                value=value,
                baseline=current.baseline,
                source="manual",
                reason=reason,
                author=author,
                statistics={"previous_version": current.version, "previous_value": current.value},
            )
            self._publish(version)
            await asyncio.to_thread(self._publish_pending, model.name)
        return version

    async def rollback(
        self, model_name: str, target: int, *, reason: str, author: str
    ) -> ThresholdVersion:
        """Re-apply an earlier version's value as a new version (history is never rewritten)."""
        async with self._threshold_lock:
            model = self._model(model_name)
            try:
                old = await asyncio.to_thread(self.store.threshold_version, model.name, target)
            except ThresholdVersionNotFound as exc:
                raise VersionMissing(str(exc)) from exc
            if old.model_version != model.version:
                raise VersionNotApplicable(
                    f"threshold version {target} was set for {model.name} model version "
                    f"{old.model_version}; the loaded model is version {model.version}"
                )
            current = self._current(model)
            version = await asyncio.to_thread(
                self.store.append_threshold,
                model.name,
                model.version,
                value=old.value,
                baseline=current.baseline,
                source="rollback",
                reason=reason or f"rollback to version {target}",
                author=author,
                statistics={
                    "rolled_back_to": target,
                    "previous_version": current.version,
                    "previous_value": current.value,
                },
            )
            self._publish(version)
            await asyncio.to_thread(self._publish_pending, model.name)
        return version

    async def approve(self, pending_id: int, *, reason: str, author: str) -> ThresholdVersion:
        async with self._threshold_lock:
            pending = await self._pending(pending_id)
            model = self._model(pending.model)
            if pending.model_version != model.version:
                raise VersionNotApplicable(
                    f"pending threshold {pending_id} was computed for {model.name} model version "
                    f"{pending.model_version}; the loaded model is version {model.version}"
                )
            try:
                version = await asyncio.to_thread(
                    self.store.approve_pending, pending_id, author=author, reason=reason
                )
            except PendingAlreadyDecided as exc:
                raise PendingClosed(str(exc)) from exc
            self._publish(version)
            await asyncio.to_thread(self._publish_pending, pending.model)
        return version

    async def reject(self, pending_id: int, *, reason: str, author: str) -> PendingThreshold:
        async with self._threshold_lock:
            pending = await self._pending(pending_id)
            try:
                rejected = await asyncio.to_thread(
                    self.store.reject_pending, pending_id, author=author, reason=reason
                )
            except PendingAlreadyDecided as exc:
                raise PendingClosed(str(exc)) from exc
            await asyncio.to_thread(self._publish_pending, pending.model)
        return rejected

    async def _pending(self, pending_id: int) -> PendingThreshold:
        try:
            pending = await asyncio.to_thread(self.store.get_pending, pending_id)
        except PendingNotFound as exc:
            raise PendingMissing(str(exc)) from exc
        if pending.status != "pending":
            raise PendingClosed(f"pending threshold {pending_id} is already {pending.status}")
        return pending

    # --- drift --------------------------------------------------------------------------

    async def check_drift(self, model_name: str | None) -> DriftReport:
        """KS on the same window the recalibrator uses; updates the drift metrics."""
        model = self._model(model_name)
        sample = await asyncio.to_thread(
            self.store.normal_sample,
            model.name,
            model.version,
            since=self.clock() - self.settings.recalibration_window_s,
            limit=self.settings.recalibration_window_labels,
        )
        # Labels picked from the review queue because the scorer flagged them are the high
        # tail by construction: tested against the whole reference law they make a "shift"
        # out of confirmed false alarms. Kept: labels given to whole spans (time ranges,
        # carried readings) and reviewed readings that were not flagged (the audit sample).
        unbiased = [
            errors
            for errors, flagged, whole_span in zip(
                sample.sensor_errors, sample.flagged, sample.representative, strict=True
            )
            if whole_span or not flagged
        ]
        recent = np.asarray(unbiased, dtype=np.float64).reshape(-1, model.manifest.n_sensors)
        report = await asyncio.to_thread(
            drift_report,
            model.artifact.reference_errors,
            recent,
            model.sensors,
            self.drift_policy,
        )
        m = self.metrics
        m.ks_statistic.labels(model.name).set(
            report.statistic if report.statistic is not None else math.nan
        )
        m.ks_pvalue.labels(model.name).set(report.pvalue if report.pvalue is not None else math.nan)
        m.drift_sensors.labels(model.name).set(len(report.drifted_sensors))
        for name in RECOMMENDATIONS:
            m.drift_recommendation.labels(model.name, name).set(
                1 if name == report.recommendation else 0
            )
        self.last_drift[model.name] = report
        return report

    def labels_page(
        self, labels: list[StoredLabel], limit: int
    ) -> tuple[list[StoredLabel], int | None]:
        """The page and the cursor for the next one (None on the last page)."""
        if len(labels) > limit:
            return labels[:limit], labels[limit - 1].id
        return labels, None
