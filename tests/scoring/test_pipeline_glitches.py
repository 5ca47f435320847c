"""The glitch guard's count through the scoring pipeline (``anomaly_glitched_readings_total``):
each reading the guard puts a value of back is counted once, by the request that brings its
successor and commits, however requests are grouped into one turn's ``score_many``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest
import torch
from conftest import build_test_artifact
from prometheus_client import CollectorRegistry

from service.errors import InvalidReading
from service.metrics import Metrics
from service.scoring.glitches import despike
from service.scoring.payload import ParsedRequest
from service.scoring.pipeline import ScoringPipeline
from service.scoring.recent import RecentReadings
from service.scoring.registry import ModelRegistry
from service.scoring.streams import StreamStates
from service.scoring.thresholds import ThresholdBoard, ThresholdSnapshot
from service.settings import Settings
from service.wire.decode import parse_json

MODEL = "guarded"
QUIET = [0.0, 0.0, 0.0, 0.0]
GLITCH = [0.0, 10.0, 0.0, 0.0]
LIMITS = [2.0, 2.0, 2.0, 2.0]


def make_pipeline(tmp_path: Path, window: int) -> tuple[ScoringPipeline, CollectorRegistry]:
    folder = tmp_path / "models"
    build_test_artifact(folder, MODEL, window=window, glitch_limits=LIMITS)
    registry = ModelRegistry(folder, default_model=MODEL)
    assert not registry.load_all()
    thresholds = ThresholdBoard()
    for model in registry.models():
        value = model.manifest.threshold.value
        thresholds.set(model.name, ThresholdSnapshot(value=value, version=1, baseline=value))
    metrics = CollectorRegistry()
    pipeline = ScoringPipeline(
        Settings(models_dir=folder, store_path=tmp_path / "store.sqlite3"),
        registry,
        thresholds,
        StreamStates(100, 3600),
        RecentReadings(1000, 3600, id_prefix="t-"),
        Metrics(metrics),
    )
    return pipeline, metrics


def single(stream: str, reading: list[float]) -> ParsedRequest:
    return parse_json(orjson.dumps({"stream_id": stream, "reading": reading}), 100)


def batch(stream: str, readings: list[list[float]]) -> ParsedRequest:
    return parse_json(orjson.dumps({"stream_id": stream, "readings": readings}), 100)


def glitched(metrics: CollectorRegistry) -> float | None:
    return metrics.get_sample_value("anomaly_glitched_readings_total", {"model": MODEL})


@pytest.mark.parametrize("window", [2, 3, 5])
def test_a_stream_coming_many_times_in_one_turn_counts_each_glitch_once(
    tmp_path: Path, window: int
) -> None:
    pipeline, metrics = make_pipeline(tmp_path, window)
    run = [QUIET, QUIET, GLITCH, QUIET, QUIET, GLITCH, QUIET, QUIET]
    outcomes = pipeline.score_many([single("a", r) for r in run] + [single("b", r) for r in run])
    assert not any(isinstance(outcome, Exception) for outcome in outcomes)
    assert glitched(metrics) == 4


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("window", [2, 4])
def test_requests_grouped_into_turns_count_what_a_whole_run_despiking_puts_back(
    tmp_path: Path, seed: int, window: int
) -> None:
    rng = np.random.default_rng(seed)
    run = rng.normal(scale=0.3, size=(60, 4)).round(3)
    spikes = rng.choice(60, size=12, replace=False)
    run[spikes, rng.integers(0, 4, size=12)] += rng.choice([-6.0, 6.0], size=12)
    run = run.astype(np.float32)
    expected = int(despike(run, np.array(LIMITS, dtype=np.float32))[1].sum())
    assert expected >= 5
    pipeline, metrics = make_pipeline(tmp_path, window)
    requests, start = [], 0
    while start < len(run):
        size = int(rng.integers(1, 5))
        rows = run[start : start + size].tolist()
        requests.append(single("s", rows[0]) if size == 1 else batch("s", rows))
        start += size
    first = 0
    while first < len(requests):
        turn = requests[first : first + int(rng.integers(1, 6))]
        assert not any(isinstance(o, Exception) for o in pipeline.score_many(turn))
        first += len(turn)
    assert glitched(metrics) == expected


def test_a_refused_request_counts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model overflows on a reading after the glitch has been judged: the refused request
    commits nothing, so the glitch is counted by the next request that commits."""
    pipeline, metrics = make_pipeline(tmp_path, 3)
    engine = pipeline.registry.get(MODEL).engine
    score = engine._score

    def overflowing(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        squared, reconstruction = score(windows)
        squared = squared.clone()
        squared[windows[:, -1, 3] > 1e10] = float("inf")
        return squared, reconstruction

    monkeypatch.setattr(engine, "_score", overflowing)
    huge = [0.0, 0.0, 0.0, 1e12]
    for reading in (QUIET, QUIET, GLITCH):
        pipeline.score(single("a", reading))
    with pytest.raises(InvalidReading):
        pipeline.score(single("a", huge))
    assert glitched(metrics) == 0
    outcomes = pipeline.score_many([single("a", huge), single("a", QUIET), single("a", huge)])
    assert isinstance(outcomes[0], InvalidReading) and isinstance(outcomes[2], InvalidReading)
    assert glitched(metrics) == 1
    with pytest.raises(InvalidReading):
        pipeline.score(batch("a", [QUIET, GLITCH, QUIET, huge]))
    assert glitched(metrics) == 1
