"""The calibration rooms wired as build_state wires them, on an in-memory store, no HTTP.

Each test module opens them in its own ``rooms`` fixture with :func:`open_rooms`.

Two test models: ``flat`` (window 1) and ``windowed`` (window 3), 4 sensors, threshold 1.
A reading ``v`` of ``flat`` scores ``mean(v**2)`` (see the root conftest's test model).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from conftest import build_test_artifact
from prometheus_client import CollectorRegistry

from service.calibration.drift_monitor import DriftMonitor
from service.calibration.keeper import ThresholdKeeper
from service.calibration.labelling import LabellingDesk
from service.calibration.recalibration import Recalibration
from service.calibration.replicas import SoloLink
from service.calibration.sql import SqlFeedbackStore
from service.metrics import Metrics
from service.scoring.pipeline import ScoringPipeline
from service.scoring.recent import RecentReadings
from service.scoring.registry import ModelRegistry
from service.scoring.scored import ScoredBatch
from service.scoring.streams import StreamStates
from service.settings import Settings
from service.wire.decode import parse_json


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class Rooms:
    settings: Settings
    registry: CollectorRegistry
    metrics: Metrics
    models: ModelRegistry
    store: SqlFeedbackStore
    keeper: ThresholdKeeper
    recent: RecentReadings
    pipeline: ScoringPipeline
    desk: LabellingDesk
    drift: DriftMonitor
    recalibration: Recalibration
    stored_counts: list[int] = field(default_factory=list)

    def score(self, stream: str, values: Any, model: str = "flat") -> tuple[ScoredBatch, list[str]]:
        """Score readings as the scoring endpoint does; the outcome and the reading ids."""
        body = {"stream_id": stream, "model": model, "readings": np.asarray(values).tolist()}
        outcome = self.pipeline.score(parse_json(orjson.dumps(body), 10_000))
        ids = [f"{outcome.id_prefix}{outcome.seq_start + i}" for i in range(len(outcome.values))]
        return outcome, ids


def make_rooms(models_dir: Path, clock: Clock, **overrides: Any) -> Rooms:
    settings = Settings(
        models_dir=models_dir, store_path=models_dir / "unused.sqlite3", **overrides
    )
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    models = ModelRegistry(models_dir)
    assert not models.load_all()
    store = SqlFeedbackStore("sqlite:///:memory:", clock=clock)
    keeper = ThresholdKeeper(
        store=store, models=models, metrics=metrics, settings=settings, clock=clock
    )
    recent = RecentReadings(settings.recent_max_readings, settings.recent_retention_s)
    streams = StreamStates(100, 3600)
    pipeline = ScoringPipeline(settings, models, keeper.board, streams, recent, metrics)
    metrics.state.watch(keeper.board, streams, models)  # as build_state wires it
    stored_counts: list[int] = []
    desk = LabellingDesk(
        store=store,
        models=models,
        keeper=keeper,
        recent=recent,
        metrics=metrics,
        settings=settings,
        labels_stored=stored_counts.append,
        clock=clock,
        rng=np.random.default_rng(0),
    )
    drift = DriftMonitor(
        store=store, models=models, metrics=metrics, settings=settings, clock=clock
    )
    recalibration = Recalibration(
        store=store,
        models=models,
        recent=recent,
        keeper=keeper,
        drift=drift,
        desk=desk,
        settings=settings,
        link=SoloLink(on_leading=metrics.recalibration_leader.set),
    )
    return Rooms(
        settings, registry, metrics, models, store, keeper, recent, pipeline, desk, drift,
        recalibration, stored_counts,
    )  # fmt: skip


@asynccontextmanager
async def open_rooms(
    tmp_path: Path, clock: Clock | None = None, **settings: Any
) -> AsyncIterator[Rooms]:
    """Rooms on two fresh test models (thresholds restored), closed on exit."""
    folder = tmp_path / "models"
    build_test_artifact(folder, "flat", window=1, n_sensors=4, threshold=1.0)
    build_test_artifact(folder, "windowed", window=3, n_sensors=4, threshold=1.0)
    built = make_rooms(folder, clock or Clock(), **settings)
    await built.keeper.restore()
    try:
        yield built
    finally:
        built.store.close()
