"""Scoring several requests together (one model call) answers each exactly as scoring
them one by one would: same replies, same stream state, same refusals, same order."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import orjson
import pytest
import torch
from conftest import ArtifactWriter
from prometheus_client import CollectorRegistry, Histogram

from service.errors import InvalidReading, UnknownModel
from service.metrics import Metrics
from service.scoring.batching import ReadingBatcher
from service.scoring.payload import ParsedRequest
from service.scoring.pipeline import ScoringPipeline
from service.scoring.recent import RecentReadings
from service.scoring.registry import ModelRegistry
from service.scoring.scored import ScoredBatch
from service.scoring.stream_store import LocalStreamStore
from service.scoring.streams import StreamStates
from service.scoring.thresholds import ThresholdBoard, ThresholdSnapshot
from service.settings import Settings
from service.wire.decode import parse_json
from service.wire.replies import render_json


def make_pipeline(models_dir: Path, tmp_path: Path) -> ScoringPipeline:
    settings = Settings(models_dir=models_dir, store_path=tmp_path / "store.sqlite3")
    registry = ModelRegistry(models_dir, default_model="flat")
    assert not registry.load_all()
    thresholds = ThresholdBoard()  # the threshold keeper's job in the app: here, the manifests'
    for model in registry.models():
        value = model.manifest.threshold.value
        thresholds.set(model.name, ThresholdSnapshot(value=value, version=1, baseline=value))
    return ScoringPipeline(
        settings,
        registry,
        thresholds,
        StreamStates(100, 3600),
        RecentReadings(1000, 3600, id_prefix="t-"),
        Metrics(CollectorRegistry()),
    )


@pytest.fixture
def models_dir(tmp_path: Path, write_test_artifact: ArtifactWriter) -> Path:
    folder = tmp_path / "models"
    write_test_artifact(folder, "flat", window=1, n_sensors=4, threshold=1.0)
    write_test_artifact(folder, "windowed", window=3, n_sensors=4, threshold=1.0)
    return folder


def request(stream: str, value: float, model: str | None = None, **extra: object) -> bytes:
    body: dict[str, object] = {"stream_id": stream, "reading": [value, 0.5, -value, 0.1]}
    if model is not None:
        body["model"] = model
    body.update(extra)
    return orjson.dumps(body)


REQUESTS = [
    request("a", 0.2),
    request("b", 3.0),
    request("a", 2.5),  # same stream, window 1: shares the run and its state
    request("a", 2.7),
    request("w", 1.0, "windowed"),  # another model: a new run
    request("w", 4.0, "windowed"),  # same stream of a windowed model: a new run
    request("w", 1e30, "windowed"),  # overflows the model: refused alone
    request("w", 2.0, "windowed"),
    request("x", 1.0, "nope"),  # unknown model: refused alone
    request("a", 3.1),
    orjson.dumps({"stream_id": "a", "reading": [1, 2, 3]}),  # wrong length: refused alone
    request("b", 0.1),
    request("a", 2.9),
]


def answers(outcomes: list[ScoredBatch | Exception]) -> list[bytes | str]:
    return [
        type(o).__name__ + str(o) if isinstance(o, Exception) else render_json(o, single=True)
        for o in outcomes
    ]


def one_by_one(pipeline: ScoringPipeline, parsed: list[ParsedRequest]) -> list[bytes | str]:
    outcomes: list[ScoredBatch | Exception] = []
    for p in parsed:
        try:
            outcomes.append(pipeline.score(p))
        except Exception as exc:
            outcomes.append(exc)
    return answers(outcomes)


def test_score_many_equals_one_by_one(models_dir: Path, tmp_path: Path) -> None:
    parsed = [parse_json(body, 10) for body in REQUESTS]
    alone, together = make_pipeline(models_dir, tmp_path), make_pipeline(models_dir, tmp_path)
    for _ in range(3):  # again with state carried over (smoothing, windows, alerts)
        want = one_by_one(alone, parsed)
        got = answers(together.score_many(parsed))
        assert got == want
    kinds = [a.split(":")[0] if isinstance(a, str) else "ok" for a in got]
    assert kinds.count("ok") == len(REQUESTS) - 3
    assert any(a.startswith(InvalidReading.__name__) for a in got if isinstance(a, str))
    assert any(a.startswith(UnknownModel.__name__) for a in got if isinstance(a, str))
    assert len(alone.streams) == len(together.streams) == 3
    assert len(alone.recent) == len(together.recent)
    for key in (("flat", "a"), ("flat", "b"), ("windowed", "w")):
        a, b = alone.streams.peek(key), together.streams.peek(key)
        assert a is not None and b is not None
        assert a.smoother.get() == b.smoother.get() and a.filled == b.filled
        assert (a.window_buffer == b.window_buffer).all()


def test_score_many_runs_share_model_calls(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = make_pipeline(models_dir, tmp_path)
    calls: list[int] = []
    engine = pipeline.registry.get("flat").engine
    module_score = engine._score

    def counted(windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(len(windows))
        return module_score(windows)  # type: ignore[no-any-return]

    monkeypatch.setattr(engine, "_score", counted)
    parsed = [parse_json(request(s, 0.3), 10) for s in ("a", "b", "a", "c", "a")]
    assert all(not isinstance(o, Exception) for o in pipeline.score_many(parsed))
    assert calls == [5]


async def test_batcher_scores_a_loop_turn_together(
    models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = make_pipeline(models_dir, tmp_path)
    reference = make_pipeline(models_dir, tmp_path)
    batcher = ReadingBatcher(LocalStreamStore(pipeline))
    flushes: list[int] = []
    score_many = pipeline.score_many

    def counted(requests: list[ParsedRequest]) -> list[ScoredBatch | Exception]:
        flushes.append(len(requests))
        return score_many(requests)

    monkeypatch.setattr(pipeline, "score_many", counted)
    parsed = [parse_json(body, 10) for body in REQUESTS]
    results = await asyncio.gather(*(batcher.score(p) for p in parsed), return_exceptions=True)
    assert flushes == [len(REQUESTS)]
    got = [r if isinstance(r, ScoredBatch | Exception) else None for r in results]
    assert None not in got
    assert answers([r for r in got if r is not None]) == one_by_one(reference, parsed)
    # A lone request is answered on its own turn.
    alone = await batcher.score(parsed[0])
    assert flushes == [len(REQUESTS), 1] and alone.stream_id == "a"


def test_counts_gathered_on_the_hot_path_are_exact_at_every_read(
    models_dir: Path, tmp_path: Path
) -> None:
    """Counters and histograms are fed in bulk when the registry is read: every read sees
    what one observe per reading would have recorded."""
    pipeline = make_pipeline(models_dir, tmp_path)
    registry = pipeline.metrics.registry
    reference = CollectorRegistry()
    bounds = pipeline.metrics.scoring.error_bounds
    errors = Histogram("e", "e", buckets=bounds, registry=reference)
    values = [0.1, 3.0, 0.7, 12.0, 1.0, 0.2, 2.5]
    batch = [[v, 0.0, 0.0, 0.0] for v in np.linspace(0.0, 4.0, 100).tolist()]
    model = {"model": "flat"}
    for round_ in range(2):
        for v in values:
            pipeline.score(
                parse_json(orjson.dumps({"stream_id": "a", "reading": [v, 0, 0, 0]}), 10)
            )
            errors.observe(v * v / 4)
        pipeline.score(parse_json(orjson.dumps({"stream_id": "b", "readings": batch}), 1000))
        for row in batch:
            errors.observe(row[0] ** 2 / 4)
        scored = registry.get_sample_value("anomaly_readings_scored_total", model)
        assert scored == (round_ + 1) * (len(values) + len(batch))
        for bound in ("0.1", "1.0", "2.0", "+Inf"):
            got = registry.get_sample_value(
                "anomaly_reconstruction_error_bucket", {**model, "le": bound}
            )
            want = reference.get_sample_value("e_bucket", {"le": bound})
            assert got == want, bound
        got_sum = registry.get_sample_value("anomaly_reconstruction_error_sum", model)
        assert got_sum == pytest.approx(reference.get_sample_value("e_sum", {}))
        anomalies = registry.get_sample_value("anomaly_anomalies_total", model)
        flagged = sum(v * v / 4 > 1.0 for v in values) + sum(r[0] ** 2 / 4 > 1.0 for r in batch)
        assert anomalies == (round_ + 1) * flagged
        top = registry.get_sample_value(
            "anomaly_top_sensor_contributions_total", {**model, "sensor": "s0"}
        )
        assert top == anomalies
    everything = ([r[0] ** 2 / 4 for r in batch] + [v * v / 4 for v in values]) * 2
    quantiles = pipeline.tally.quantiles([("flat", "1")])["flat"]
    assert quantiles[0.5] == pytest.approx(np.quantile(everything, 0.5))
