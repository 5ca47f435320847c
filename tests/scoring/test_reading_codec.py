"""A scored reading packed for Redis reads back as the reading the recent-readings buffer
holds, field for field (what a label by id records on another replica)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from prometheus_client import CollectorRegistry

from service.metrics import Metrics
from service.scoring.decision import WindowMatch
from service.scoring.pipeline import ScoringPipeline, WindowLookup
from service.scoring.reading_chunk import RecentReading
from service.scoring.reading_codec import decode, pack
from service.scoring.recent import RecentReadings
from service.scoring.registry import ModelRegistry
from service.scoring.streams import StreamStates
from service.scoring.thresholds import ThresholdBoard, ThresholdSnapshot
from service.settings import Settings
from service.wire.decode import parse_json


@pytest.fixture
def pipeline(tmp_path: Path, write_test_artifact: Any) -> ScoringPipeline:
    return make_pipeline(tmp_path, write_test_artifact)


def make_pipeline(
    tmp_path: Path, write_test_artifact: Any, windows: WindowLookup | None = None
) -> ScoringPipeline:
    folder = tmp_path / "models"
    write_test_artifact(folder, "windowed", window=3, n_sensors=4, threshold=1.0)
    registry = ModelRegistry(folder, default_model="windowed")
    assert not registry.load_all()
    thresholds = ThresholdBoard()
    thresholds.set("windowed", ThresholdSnapshot(value=1.0, version=3, baseline=1.0))
    return ScoringPipeline(
        Settings(models_dir=folder, store_path=tmp_path / "store.sqlite3"),
        registry,
        thresholds,
        StreamStates(100, 3600),
        RecentReadings(1000, 3600, id_prefix="t-"),
        Metrics(CollectorRegistry()),
        windows=windows,
    )


def split(packed_ids: bytes, count: int, prefix: str, seq: int) -> list[str]:
    """The ids as the commit script reads them."""
    if not packed_ids:
        return [f"{prefix}{seq + i}" for i in range(count)]
    ids, at = [], 0
    while at < len(packed_ids):
        length = int.from_bytes(packed_ids[at : at + 2], "big")
        ids.append(packed_ids[at + 2 : at + 2 + length].decode())
        at += 2 + length
    return ids


def same(a: RecentReading, b: RecentReading) -> None:
    for field in RecentReading.__slots__:
        x, y = getattr(a, field), getattr(b, field)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x is not None and y is not None, field
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), field
        else:
            assert x == y, field


@pytest.mark.parametrize("with_ids", [False, True])
def test_packed_readings_read_back_as_the_recent_buffer_holds_them(
    pipeline: ScoringPipeline, with_ids: bool
) -> None:
    rng = np.random.default_rng(3)
    readings: list[Any] = []
    for i, row in enumerate(rng.normal(0, 1.4, size=(6, 4)).round(3).tolist()):
        reading: dict[str, Any] = {"values": row}
        if with_ids and i != 2:  # one generated id among the client's
            reading["reading_id"] = f"scada-{i}-ü"
        if i % 2:
            reading["timestamp"] = 1_767_600_000.0 + i
        readings.append(reading)
    body = orjson.dumps({"stream_id": "pump-1", "readings": readings})
    scored = pipeline.score(parse_json(body, 100))
    assert scored.warming == 2 and scored.anomalies.any()
    packed = pack(scored)
    assert packed.count == len(readings) == len(packed.records) // packed.record_size
    ids = split(packed.ids, packed.count, packed.id_prefix, packed.seq_start)
    for row, reading_id in enumerate(ids):
        record = packed.records[row * packed.record_size : (row + 1) * packed.record_size]
        got = decode(reading_id, "pump-1", record)
        held = pipeline.recent.get(reading_id, "pump-1")
        assert held is not None
        same(got, held)
    assert (got.threshold, got.threshold_version, got.model) == (1.0, 3, "windowed")


def test_single_readings_pack_as_batches_do(pipeline: ScoringPipeline) -> None:
    """One reading takes a struct path instead of numpy's: the same records, warming or not."""
    for i, stamp in enumerate([None, 1_767_600_000.0, None, 1_767_600_003.0]):
        reading: dict[str, Any] = {"values": [2.0 - i, 0.5, -0.3, 0.1], "reading_id": f"x{i}"}
        if stamp is not None:
            reading["timestamp"] = stamp
        body = orjson.dumps({"stream_id": "s", "reading": reading})
        packed = pack(pipeline.score(parse_json(body, 100)))
        assert packed.count == 1 and split(packed.ids, 1, "", 0) == [f"x{i}"]
        held = pipeline.recent.get(f"x{i}", "s")
        assert held is not None and (held.error is None) == (i < 2)
        same(decode(f"x{i}", "s", packed.records), held)


def test_the_windows_a_reading_fell_in_travel_with_it(
    tmp_path: Path, write_test_artifact: Any
) -> None:
    """A label by id on another replica must know the reading was inside a window that
    keeps it out of learning, as the replica that scored it does."""
    match = WindowMatch(suppressed_by=4, excluded_by=7)
    pipeline = make_pipeline(tmp_path, write_test_artifact, lambda model, stream, at: match)
    rows = [[2.0, 0.5, -0.3, 0.1]] * 4
    batch = pipeline.score(parse_json(orjson.dumps({"stream_id": "s", "readings": rows}), 100))
    single = pipeline.score(parse_json(orjson.dumps({"stream_id": "s", "reading": rows[0]}), 100))
    for scored in (batch, single):
        packed = pack(scored)
        for row in range(packed.count):
            reading_id = f"t-{scored.seq_start + row}"
            record = packed.records[row * packed.record_size : (row + 1) * packed.record_size]
            got = decode(reading_id, "s", record)
            assert (got.suppressed_by, got.excluded_by) == (4, 7)
            held = pipeline.recent.get(reading_id, "s")
            assert held is not None
            same(got, held)
