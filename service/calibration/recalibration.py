"""One recalibration step per model: sample the confirmed normals, weigh them, propose a
candidate (the rule is :mod:`service.calibration.recalibrator`); the keeper applies it.

:meth:`Recalibration.run_scheduled` is what the background task runs every interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from service.calibration.anchors import Anchor, anchor_of
from service.calibration.drift_monitor import DriftMonitor
from service.calibration.evidence import (
    Exceedance,
    effective_size,
    model_memory,
    sample_exceedance,
)
from service.calibration.keeper import ThresholdKeeper
from service.calibration.labelling import LabellingDesk
from service.calibration.recalibrator import (
    Candidate,
    RecalibrationPolicy,
    candidate_threshold,
    insufficient,
    review_weights,
)
from service.calibration.records import NormalSample, RecalibrationRun
from service.calibration.replicas import ReplicaLink
from service.calibration.store import FeedbackStore
from service.scoring.manifest import ScoreSmoothing
from service.scoring.recent import RecentReadings
from service.scoring.registry import LoadedModel, ModelRegistry
from service.scoring.smoothing import stream_smoothing
from service.scoring.thresholds import ThresholdSnapshot
from service.settings import Settings

logger = logging.getLogger(__name__)


class Recalibration:
    """Proposes candidates from the store's labels; the keeper decides and records."""

    def __init__(
        self,
        *,
        store: FeedbackStore,
        models: ModelRegistry,
        recent: RecentReadings,
        keeper: ThresholdKeeper,
        drift: DriftMonitor,
        desk: LabellingDesk,
        settings: Settings,
        link: ReplicaLink,
    ) -> None:
        self.store = store
        self.models = models
        self.recent = recent
        self.keeper = keeper
        self.drift = drift
        self.desk = desk
        self.settings = settings
        self.link = link

    def policy_for(self, model: LoadedModel) -> RecalibrationPolicy:
        s = self.settings
        return RecalibrationPolicy(
            method=s.recalibration_method,
            quantile=s.recalibration_quantile or model.manifest.threshold.quantile,
            mad_k=s.recalibration_mad_k,
            min_samples=s.recalibration_min_samples,
            max_relative_change=s.recalibration_max_change,
            min_relative_change=s.recalibration_min_change,
            confidence=s.recalibration_confidence,
        )

    async def run_scheduled(self, trigger: str) -> None:
        """Every model in turn: a recalibration step (on the leading replica only: with a
        shared store one replica recalibrates, the others adopt its versions; none while
        ``recalibration_enabled`` is off), a drift check, the review queue's gauge; a model
        that fails leaves the others theirs."""
        await self.keeper.sync_from_store()
        for model in self.models.models():
            try:
                if self.link.leading and self.settings.recalibration_enabled:
                    await self.recalibrate(model.name, trigger=trigger)
                await self.drift.check(model.name)
                await self.desk.review_queue(model.name)  # refreshes its gauge
            except Exception:
                # Recorded and counted as a failed run; the other models still get theirs.
                logger.exception("scheduled calibration of %s failed", model.name)

    async def recalibrate(self, model_name: str | None, *, trigger: str) -> RecalibrationRun:
        """One step: sample the window, compute the candidate, apply / hold / skip, record."""
        return await self.keeper.recalibrate(model_name, trigger=trigger, propose=self._propose)

    async def _propose(
        self, model: LoadedModel, current: ThresholdSnapshot, started: float
    ) -> Candidate:
        sample = await asyncio.to_thread(
            self.store.normal_sample,
            model.name,
            model.version,
            since=started - self.settings.recalibration_window_s,
            limit=self.settings.recalibration_window_labels,
        )
        policy = self.policy_for(model)
        share, share_from = self._flagged_share(model, sample, policy)
        memory = model_memory(model)
        declared = model.manifest.smoothing
        smoothed = declared is not None and declared.method != "none"
        served = stream_smoothing(self.settings, declared)
        if declared is not None and served != declared:
            return _overridden_smoothing(current, served, declared)
        counted = None if memory is None else memory.counting(smoothed)
        if declared is not None and smoothed and counted is None:
            return _unknown_score_memory(current, declared.label())
        # A threshold on smoothed scores: the candidate is their quantile, the labels without
        # a recorded score (from before it was recorded) left out.
        values = sample.scores if smoothed else sample.errors
        tau = 1.0 if counted is None else counted  # memory unknown: each label its own
        candidate = candidate_threshold(
            values,
            current.value,
            policy,
            weights=review_weights(sample.flagged, share),
            exceedance=self._exceedance(model, sample, values, current.value, tau, smoothed),
            anchor=await asyncio.to_thread(self._anchor, model, current),
        )
        candidate.statistics.update(
            {
                "flagged_share": share,
                "flagged_share_from": share_from,
                "n_flagged": sum(sample.flagged),
            }
        )
        return candidate

    def _anchor(self, model: LoadedModel, current: ThresholdSnapshot) -> Anchor | None:
        """Blocking: the threshold a person last chose for this artifact (anchors.py)."""
        chosen = self.store.latest_chosen_threshold(model.name, model.version, current.baseline)
        return None if chosen is None else anchor_of(chosen)

    def _exceedance(
        self,
        model: LoadedModel,
        sample: NormalSample,
        values: Sequence[float],
        current: float,
        tau: float,
        smoothed: bool,
    ) -> Exceedance | None:
        """How often normal operation exceeds ``current``, from what ``_flagged_share``
        takes the flagged share from: the representative labels (each request's labels for
        one stream a stretch, counted by ``tau``; with the frozen labels released by their
        reading's id, and also with the others), else the retained scored readings of the
        model (each stream's a stretch); None from labels picked from the review queue
        alone, which over-represent alerts by construction."""
        spans = sample.spans or ("",) * len(values)  # unknown: all one span
        kept = [i for i, whole in enumerate(sample.representative) if whole]
        if kept or sample.frozen.errors:
            # A frozen reading released by a label given to its id is normal operation, in
            # its place in the range; the others may be a fault. They are above the
            # threshold more often than the rest (scored in alerts): left out alone, they
            # would read as a threshold too high.
            frozen = sample.frozen
            frozen_values = frozen.scores if smoothed else frozen.errors
            pairs = list(zip(frozen_values, frozen.spans, frozen.released, strict=True))
            released = [(value, span) for value, span, known in pairs if known]
            held = [(value, span) for value, span, known in pairs if not known]
            measured = [(values[i], spans[i]) for i in kept] + released
            seen = _exceedance_of(measured, current, tau)
            if seen is not None and held:
                whole = _exceedance_of(measured + held, current, tau)
                if whole is not None and whole.n > seen.n:
                    seen = replace(seen, with_frozen=whole)
            if seen is not None:
                return seen
        streams = self.recent.exceedances(model.name, model.version, current, smoothed=smoothed)
        if not streams:
            return None
        lengths = np.array([n for n, _ in streams], dtype=np.float64)
        return Exceedance(
            n_above=sum(above for _, above in streams),
            n=int(lengths.sum()),
            effective=effective_size(lengths, tau),
            source="retained scored readings",
        )

    def _flagged_share(
        self, model: LoadedModel, sample: NormalSample, policy: RecalibrationPolicy
    ) -> tuple[float, str]:
        """How much of the normal error distribution the flagged readings stand for.

        From the representative labels (time ranges, carried readings) when there are
        any: they hold flagged and unflagged readings in the stream's own proportion, with
        the readings of those ranges that the learning freeze kept out and a label given to
        their id released.
        Else from the retained scored readings of the model version (true anomalies among them
        count as flagged: the relative-change cap guards that case). Else the nominal
        ``1 - quantile``, which leaves confirmed false alarms no more weight than a
        correct threshold would give them."""
        pairs = zip(sample.flagged, sample.representative, strict=True)
        representative = [flagged for flagged, kept_whole in pairs if kept_whole]
        released = sum(sample.frozen.released)
        if representative or released:
            # Released frozen labels are flagged (scored in alerts) normal operation of their
            # ranges; the others may be a fault and weigh no candidate.
            share = (sum(representative) + released) / (len(representative) + released)
            return share, "representative labels"
        retained = self.recent.flagged_share(model.name, model.version)
        if retained is not None:
            return retained, "retained scored readings"
        return 1.0 - policy.quantile, "nominal"


def _unknown_score_memory(current: ThresholdSnapshot, smoothing: str) -> Candidate:
    """A smoothed model whose artifact does not say how long its smoothed scores remember
    (trained before it was recorded, its reference a sample of the calibration run): a
    labelled stretch's worth cannot be told, so no candidate is proposed."""
    return insufficient(
        current.value,
        f"the threshold is on {smoothing}-smoothed scores and the model's artifact does not "
        "record how long those remember (trained before it was recorded, its reference a "
        "sample of the calibration run), so how many independent readings the labels are "
        "worth cannot be told: no candidate is proposed; set the threshold by hand (admin) "
        "or retrain",
        {"smoothing": smoothing},
    )


def _overridden_smoothing(
    current: ThresholdSnapshot, served: ScoreSmoothing, declared: ScoreSmoothing
) -> Candidate:
    """Streams smoothed by the settings, not as the model declares: its threshold (and the
    memory it records) are for the declared smoothing, the labels' scores for another."""
    return insufficient(
        current.value,
        f"the model's threshold was set on {declared.label()}-smoothed scores but the "
        f"settings smooth its streams by {served.label()}, so the labels' scores are not on "
        "its scale: no candidate is proposed; set the threshold by hand (admin), or leave the "
        "smoothing to the model",
        {"smoothing": declared.label(), "served_smoothing": served.label()},
    )


def _exceedance_of(
    labels: Sequence[tuple[float, str]], current: float, tau: float
) -> Exceedance | None:
    """Of representative labels, each a value and its span."""
    return sample_exceedance(
        [value for value, _ in labels],
        current,
        spans=[span for _, span in labels],
        memory=tau,
        source="representative labels",
    )
