"""Scoring replies: the column-fragment renderer of large batches writes exactly the bytes
the per-reading dicts give."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import orjson
import pytest

from service.scoring.registry import LoadedModel
from service.scoring.scored import ScoredBatch
from service.scoring.thresholds import ThresholdSnapshot
from service.wire import replies
from service.wire.replies import render_json


def outcome(
    rng: np.random.Generator,
    size: int,
    *,
    warming: int,
    client_ids: bool,
    timestamps: bool,
    odd_values: bool,
    k: int,
    expects: bool = True,
) -> ScoredBatch:
    n = 50
    scored = size - warming
    sensors = [f"s{i:02d}" for i in range(n)]
    if odd_values:
        sensors[1] = 'quo"te\\é\u2028'
    model = SimpleNamespace(
        name="plant", version="7", sensors=sensors, window=warming + 2, expects_readings=expects
    )
    scale = 10 ** rng.uniform(-8, 8, size=scored) if odd_values else 1.0
    errors = rng.exponential(size=scored) * scale
    if odd_values and scored:
        errors[0], errors[-1] = 0.0, 1e300
    stamps = None
    if timestamps:
        stamps = rng.uniform(0, 2e9, size=size)
        stamps[::4] = np.nan
    return ScoredBatch(
        model=cast(LoadedModel, model),
        stream_id='line"7',
        threshold=ThresholdSnapshot(value=0.123456789, version=3, baseline=0.1),
        reading_ids=[f"id-{i}" if i % 3 else f'c"{i},\\x/é' for i in range(size)]
        if client_ids
        else None,
        id_prefix="rabcd1234-",
        seq_start=977,
        received_at=1.7e9,
        timestamps=stamps,
        warming=warming,
        history=0,
        values=(rng.normal(size=(size, n)) * 100).astype(np.float32),
        errors=errors,
        scores=errors / 0.123456789,
        anomalies=errors > 1.5,
        smoothed=errors * 0.9,
        states=rng.integers(0, 4, size=size).astype(np.int8),
        top_index=rng.integers(0, n, size=(scored, k)),
        top_share=rng.random((scored, k)),
        squared=rng.exponential(size=(scored, n)).astype(np.float32),
        reconstruction=(rng.normal(size=(scored, n)) * 1e3).astype(np.float32),
        alerts_raised=2,
    )


@pytest.mark.parametrize("size", [32, 33, 200])
@pytest.mark.parametrize("warming", [0, 1, 3])
@pytest.mark.parametrize("client_ids", [False, True])
@pytest.mark.parametrize("timestamps", [False, True])
@pytest.mark.parametrize("odd_values", [False, True])
@pytest.mark.parametrize("k", [1, 3])
def test_fragments_equal_dicts(
    monkeypatch: pytest.MonkeyPatch,
    size: int,
    warming: int,
    client_ids: bool,
    timestamps: bool,
    odd_values: bool,
    k: int,
) -> None:
    rng = np.random.default_rng(size * 1000 + warming * 100 + k)
    scored = outcome(
        rng,
        size,
        warming=warming,
        client_ids=client_ids,
        timestamps=timestamps,
        odd_values=odd_values,
        k=k,
    )
    fragments = render_json(scored, single=False)
    monkeypatch.setattr(replies, "_FRAGMENTS_MIN", 10**9)
    dicts = render_json(scored, single=False)
    assert fragments == dicts
    body: dict[str, Any] = orjson.loads(fragments)
    assert len(body["results"]) == size and body["alerts_raised"] == 2


@pytest.mark.parametrize("size", [1, 5, 33, 200])
def test_a_model_that_expects_nothing_of_the_reading_replies_null(
    monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """DPCA, CVA and a whitened residual write a quadratic form as a reconstruction: the
    reply says null there, in either renderer, and keeps the observed values."""
    rng = np.random.default_rng(size)
    scored = outcome(
        rng, size, warming=0, client_ids=False, timestamps=False, odd_values=False, k=3,
        expects=False,
    )  # fmt: skip
    body = render_json(scored, single=size == 1)
    monkeypatch.setattr(replies, "_FRAGMENTS_MIN", 10**9)
    assert render_json(scored, single=size == 1) == body
    parsed: dict[str, Any] = orjson.loads(body)
    results = [parsed["result"]] if size == 1 else parsed["results"]
    tops = [top for result in results for top in result["top_sensors"]]
    assert len(tops) == 3 * size
    assert all(top["reconstructed"] is None and top["observed"] is not None for top in tops)
