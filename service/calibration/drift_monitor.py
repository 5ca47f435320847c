"""Drift watch: the KS tests of :mod:`service.calibration.drift` run on the store's recent
confirmed normals, with their gauges set."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from service.calibration.drift import RECOMMENDATIONS, DriftPolicy, DriftReport, drift_report
from service.calibration.evidence import model_memory
from service.calibration.store import FeedbackStore
from service.metrics import Metrics
from service.scoring.registry import LoadedModel, ModelRegistry
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class ModelDrift:
    """A served model's drift report."""

    model: LoadedModel
    report: DriftReport


class DriftMonitor:
    """Judges each served model's drift on the window the recalibrator uses."""

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
        self.policy = DriftPolicy(
            alpha=settings.drift_alpha,
            min_effect=settings.drift_min_effect,
            retrain_effect=settings.drift_retrain_effect,
            min_samples=settings.drift_min_samples,
        )

    async def check_all(self) -> list[ModelDrift]:
        return [await self.check(model.name) for model in self.models.models()]

    async def check(self, model_name: str | None) -> ModelDrift:
        """KS on the same window the recalibrator uses; updates the drift metrics."""
        model = self.models.get(model_name)
        sample = await asyncio.to_thread(
            self.store.normal_sample,
            model.name,
            model.version,
            since=self.clock() - self.settings.recalibration_window_s,
            limit=self.settings.recalibration_window_labels,
            # Readings scored in an alert and labelled with a range may be a fault that
            # lasts: the drift test leaves them out, so the store need not read them.
            with_frozen=False,
        )
        # Labels picked from the review queue because the scorer flagged them are the high
        # tail by construction: tested against the whole reference law they make a "shift"
        # out of confirmed false alarms. Kept: labels given to whole spans (time ranges,
        # carried readings) and reviewed readings that were not flagged (the audit sample).
        spans = sample.spans or ("",) * len(sample.errors)  # unknown: all one span
        kept = [
            (errors, span)
            for errors, flagged, whole_span, span in zip(
                sample.sensor_errors, sample.flagged, sample.representative, spans, strict=True
            )
            if whole_span or not flagged
        ]
        unbiased = [errors for errors, _ in kept]
        kept_spans = [span for _, span in kept]
        recent = np.asarray(unbiased, dtype=np.float64).reshape(-1, model.manifest.n_sensors)
        report = await asyncio.to_thread(
            drift_report,
            model.artifact.reference_errors,
            recent,
            model.sensors,
            self.policy,
            model_memory(model),
            kept_spans,
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
        return ModelDrift(model=model, report=report)
