"""The threshold keeper: the one writer of the thresholds in force and of their history.

Every change to a model's threshold (start-up restore, model reload, a recalibration run,
an approval, a rollback, a hand-set value, a version another replica wrote) goes through
:class:`ThresholdKeeper`: it commits the version to the store, then swaps the snapshot on
its :class:`~service.scoring.thresholds.ThresholdBoard`, which the scoring path and the
routes only read. Changes are serialised by one lock, so the board always ends on the
newest version the store holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace

from service.calibration.admin_log import log_admin_change
from service.calibration.anchors import rollback_anchor
from service.calibration.outcome import record_outcome
from service.calibration.recalibrator import Candidate
from service.calibration.records import (
    NewRun,
    PendingThreshold,
    RecalibrationRun,
    ThresholdVersion,
)
from service.calibration.store import (
    FeedbackStore,
    PendingAlreadyDecided,
    PendingNotFound,
    StoreUnreachable,
    ThresholdVersionNotFound,
)
from service.errors import (
    InvalidRequest,
    PendingClosed,
    PendingMissing,
    UnknownModel,
    VersionMissing,
    VersionNotApplicable,
)
from service.metrics import Metrics
from service.scoring.registry import LoadedModel, ModelRegistry
from service.scoring.thresholds import ThresholdBoard, ThresholdSnapshot
from service.settings import Settings

MANUAL_RANGE = 1e6  # a hand-set threshold stays within this factor of the training baseline
logger = logging.getLogger(__name__)

Propose = Callable[[LoadedModel, ThresholdSnapshot, float], Awaitable[Candidate]]
"""A recalibration rule: (model, threshold in force, start time) → the candidate."""


@dataclass(frozen=True, slots=True)
class InForce:
    """A served model's threshold in force and the candidate awaiting approval, if any."""

    model: LoadedModel
    snapshot: ThresholdSnapshot
    pending: PendingThreshold | None


class ThresholdKeeper:
    """Owns the threshold board (it creates it; others read ``board``) and writes every
    threshold version, pending threshold and recalibration run to the store."""

    def __init__(
        self,
        *,
        store: FeedbackStore,
        models: ModelRegistry,
        metrics: Metrics,
        settings: Settings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.models = models
        self.metrics = metrics
        self.settings = settings
        self.clock = clock
        self.board = ThresholdBoard()
        self._lock = asyncio.Lock()
        # Models on their manifest's threshold because the store was unreachable at start.
        self._unstored: set[str] = set()
        # Per model, the newest version sync found set for another artifact (said once).
        self._foreign: dict[str, int] = {}

    # --- reads --------------------------------------------------------------------------

    def current(self, model: LoadedModel) -> ThresholdSnapshot:
        """The snapshot in force for a served model (event loop)."""
        if model.name not in self.board:
            raise UnknownModel(f"model {model.name!r} has no threshold in force")
        return self.board.get(model.name)

    async def in_force(self, model_name: str | None) -> InForce:
        model = self.models.get(model_name)
        snapshot = self.board.get(model.name)
        pending = await asyncio.to_thread(self.store.open_pending, model.name)
        return InForce(model=model, snapshot=snapshot, pending=pending)

    async def all_in_force(self) -> list[InForce]:
        return [await self.in_force(model.name) for model in self.models.models()]

    async def versions(self, model: str) -> list[ThresholdVersion]:
        """Oldest first."""
        return await asyncio.to_thread(self.store.threshold_history, model)

    async def pendings(self, model: str) -> list[PendingThreshold]:
        """Newest first, every status."""
        return await asyncio.to_thread(self.store.list_pending, model)

    async def runs(self, model: str | None, *, limit: int) -> list[RecalibrationRun]:
        """Newest first."""
        return await asyncio.to_thread(self.store.list_runs, model, limit=limit)

    # --- publication --------------------------------------------------------------------

    def _publish(self, version: ThresholdVersion) -> None:
        """Swap the snapshot the decision reads; called after the store commit. The threshold
        gauges read the board when /metrics is collected (service/collectors.py)."""
        snapshot = ThresholdSnapshot(
            value=version.value, version=version.version, baseline=version.baseline
        )
        self.board.set(version.model, snapshot)

    def _publish_pending(self, model: str) -> None:
        """Blocking (a store read)."""
        open_pending = self.store.open_pending(model)
        self.metrics.threshold_pending.labels(model).set(0 if open_pending is None else 1)

    def _restore(self, models: Sequence[LoadedModel]) -> None:
        """Blocking: the latest stored version of each model version, or its manifest
        threshold persisted as a new version."""
        for model in models:
            self._unstored.discard(model.name)  # a reload's restore replaces it either way
            version = self.store.ensure_threshold(
                model.name,
                model.version,
                value=model.manifest.threshold.value,
                reason=f"training threshold from the manifest of {model.name}/{model.version}",
            )
            self._publish(version)
            self._publish_pending(model.name)
            if "replaced_baseline" in version.statistics:  # the version in force says why
                logger.warning(
                    "threshold for %s: version %d started from the manifest when the artifact "
                    "was replaced: %s",
                    model.name,
                    version.version,
                    version.reason,
                )
            logger.info(
                "threshold for %s: version %d = %.6g (%s)",
                model.name,
                version.version,
                version.value,
                version.source,
            )

    async def restore(self, *, tolerate_unreachable: bool = False) -> bool:
        """Start-up: put every loaded model's stored threshold in force; False when the
        store did not answer and ``tolerate_unreachable`` (a shared store, down while a
        replica starts) let it go on: the models not restored score on their manifest's
        threshold, as version 0 (none stored), until :meth:`sync_from_store` reaches it."""
        async with self._lock:
            try:
                await asyncio.to_thread(self._restore, self.models.models())
            except StoreUnreachable:
                if not tolerate_unreachable:
                    raise
                for model in self.models.models():
                    if model.name not in self.board:
                        self._unstored.add(model.name)
                        value = model.manifest.threshold.value
                        self.board.set(
                            model.name, ThresholdSnapshot(value=value, version=0, baseline=value)
                        )
                        logger.warning(
                            "threshold for %s: %.6g from its manifest, not yet stored (the "
                            "store is unreachable)",
                            model.name,
                            value,
                        )
                return False
        return True

    async def swap_models(
        self, reload: Callable[[], Sequence[LoadedModel]]
    ) -> Sequence[LoadedModel]:
        """Run a model reload and restore its thresholds under the threshold lock: no
        recalibration, approval or hand-set value computed for the old model can then be
        published over the new model's threshold. Blocking inside, on purpose: no request
        sees the new model with the old threshold."""
        async with self._lock:
            loaded = reload()
            self._restore(loaded)
        return loaded

    async def sync_from_store(self) -> None:
        """Adopt versions another replica wrote (a shared PostgreSQL store): one cheap query
        when nothing changed; called on each notification and every poll interval."""
        async with self._lock:
            if self._unstored:  # started while the store was down: restore them now
                unstored = [m for m in self.models.models() if m.name in self._unstored]
                await asyncio.to_thread(self._restore, unstored)
            newest = await asyncio.to_thread(self.store.newest_versions)
            for model in self.models.models():
                known = self.board.get(model.name).version if model.name in self.board else None
                if newest.get(model.name) in (None, known):
                    continue
                latest = await asyncio.to_thread(
                    self.store.latest_threshold, model.name, model.version
                )
                if latest is not None and latest.baseline != model.manifest.threshold.value:
                    # Another replica serves another artifact under this name and version
                    # (a retrain in place, mid-deploy): its thresholds are not this model's.
                    if self._foreign.get(model.name) != latest.version:
                        self._foreign[model.name] = latest.version
                        logger.warning(
                            "threshold for %s: version %d was set for another artifact "
                            "(manifest threshold %.6g, this one's %.6g); not adopted",
                            model.name,
                            latest.version,
                            latest.baseline,
                            model.manifest.threshold.value,
                        )
                elif latest is not None and latest.version != known:
                    self._publish(latest)
                    logger.info(
                        "threshold for %s: version %d = %.6g, set by %s (%s)",
                        model.name,
                        latest.version,
                        latest.value,
                        latest.author,
                        latest.source,
                    )
                await asyncio.to_thread(self._publish_pending, model.name)

    # --- recalibration ------------------------------------------------------------------

    async def recalibrate(
        self, model_name: str | None, *, trigger: str, propose: Propose
    ) -> RecalibrationRun:
        """One step: ``propose`` samples and computes the candidate, the keeper applies,
        holds or skips it and records the run."""
        started = self.clock()
        async with self._lock:
            # Resolved under the lock: a reload (which takes it too) can't swap the model
            # between sampling its labels and publishing the threshold computed from them.
            model = self.models.get(model_name)
            current = self.current(model)
            # What every run of this step records, whatever its outcome (failed until told).
            frame = NewRun(
                model=model.name,
                model_version=model.version,
                trigger=trigger,
                outcome="failed",
                current_value=current.value,
                candidate=None,
                n_samples=0,
                message="",
                statistics={},
                threshold_version=None,
                pending_id=None,
                started_at=started,
            )
            try:
                candidate = await propose(model, current, started)
                run = await asyncio.to_thread(
                    record_outcome,
                    self.store,
                    model,
                    current,
                    candidate,
                    frame,
                    same_within=self.settings.recalibration_min_change,
                )
            except Exception as exc:
                logger.exception("recalibration of %s failed", model.name)
                self.metrics.recalibration_runs.labels(model.name, "failed").inc()
                self.metrics.last_recalibration.labels(model.name).set(self.clock())
                with contextlib.suppress(Exception):  # the store itself may be what failed
                    failed = replace(frame, message=f"{type(exc).__name__}: {exc}")
                    await asyncio.to_thread(self.store.record_run, failed)
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

    # --- admin --------------------------------------------------------------------------

    async def set_by_hand(
        self, model_name: str, value: float, *, reason: str, author: str
    ) -> ThresholdVersion:
        if not (math.isfinite(value) and value > 0):
            raise InvalidRequest(f"threshold must be a positive finite number, got {value}")
        async with self._lock:
            model = self.models.get(model_name)
            current = self.current(model)
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
        log_admin_change(version, current)
        return version

    async def rollback(
        self, model_name: str, target: int, *, reason: str, author: str
    ) -> ThresholdVersion:
        """Re-apply an earlier version's value as a new version (history is never rewritten)."""
        async with self._lock:
            model = self.models.get(model_name)
            try:
                old = await asyncio.to_thread(self.store.threshold_version, model.name, target)
            except ThresholdVersionNotFound as exc:
                raise VersionMissing(str(exc)) from exc
            if old.model_version != model.version:
                raise VersionNotApplicable(
                    f"threshold version {target} was set for {model.name} model version "
                    f"{old.model_version}; the loaded model is version {model.version}"
                )
            current = self.current(model)
            if old.baseline != model.manifest.threshold.value:
                raise VersionNotApplicable(
                    f"threshold version {target} was set for another artifact of "
                    f"{model.name}/{model.version} (its manifest's threshold was "
                    f"{old.baseline:.6g}; the loaded one's is "
                    f"{model.manifest.threshold.value:.6g})"
                )
            chosen_before = await asyncio.to_thread(
                self.store.latest_chosen_threshold,
                model.name,
                model.version,
                current.baseline,
                before=target,
            )
            kept = rollback_anchor(old, chosen_before)
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
                    **({} if kept is None else kept.as_statistics()),
                },
            )
            self._publish(version)
            await asyncio.to_thread(self._publish_pending, model.name)
        log_admin_change(version, current)
        return version

    async def approve(self, pending_id: int, *, reason: str, author: str) -> ThresholdVersion:
        async with self._lock:
            pending = await self._open_pending(pending_id)
            model = self.models.get(pending.model)
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
            current = self.current(model)
            self._publish(version)
            await asyncio.to_thread(self._publish_pending, pending.model)
        log_admin_change(version, current)
        return version

    async def reject(self, pending_id: int, *, reason: str, author: str) -> PendingThreshold:
        async with self._lock:
            pending = await self._open_pending(pending_id)
            try:
                rejected = await asyncio.to_thread(
                    self.store.reject_pending, pending_id, author=author, reason=reason
                )
            except PendingAlreadyDecided as exc:
                raise PendingClosed(str(exc)) from exc
            await asyncio.to_thread(self._publish_pending, pending.model)
        logger.info(
            "threshold for %s: candidate %.6g (pending %d) rejected by %s, reason %r",
            rejected.model,
            rejected.candidate,
            rejected.id,
            author,
            reason,
        )
        return rejected

    async def _open_pending(self, pending_id: int) -> PendingThreshold:
        try:
            pending = await asyncio.to_thread(self.store.get_pending, pending_id)
        except PendingNotFound as exc:
            raise PendingMissing(str(exc)) from exc
        if pending.status != "pending":
            raise PendingClosed(f"pending threshold {pending_id} is already {pending.status}")
        return pending
