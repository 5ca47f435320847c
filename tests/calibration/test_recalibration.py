"""One recalibration step and the scheduled run, on an in-memory store, without HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from conftest import build_test_artifact
from rooms_support import Rooms, open_rooms

from service.calibration.selections import CarriedReadings


@pytest.fixture
async def rooms(tmp_path: Path) -> AsyncIterator[Rooms]:
    async with open_rooms(tmp_path, recalibration_max_change=0.5) as built:
        yield built


async def confirm_normal(rooms: Rooms, n: int, noise: float, model: str = "flat") -> None:
    """``n`` carried readings labelled normal; on ``flat`` their errors are noise² · χ²(4)/4."""
    values = noise * np.random.default_rng(n).normal(size=(n, 4))
    await rooms.desk.submit(
        CarriedReadings(model, "pump", values.astype(np.float32), None),
        "normal",
        None,
        author="olga",
        client_label_id=None,
        content_hash=f"{model}-{n}-{noise}",
    )


async def test_a_step_applies_the_candidate_through_the_keeper(rooms: Rooms) -> None:
    await confirm_normal(rooms, 3000, noise=0.58)  # its q99 lies near 1.1: enough to show it
    run = await rooms.recalibration.recalibrate("flat", trigger="test")
    assert run.outcome == "applied" and run.n_samples == 3000, run.message
    assert run.statistics["flagged_share_from"] == "representative labels"
    snapshot = rooms.keeper.board.get("flat")
    assert snapshot.version == run.threshold_version == 2
    stored = rooms.store.threshold_version("flat", 2)
    assert (stored.value, stored.source, stored.author) == (
        snapshot.value,
        "recalibration",
        "recalibrator",
    )
    assert 0.8 < snapshot.value < 1.5
    assert rooms.keeper.board.get("windowed").version == 1  # another model's is untouched


async def test_too_few_confirmed_normals_change_nothing(rooms: Rooms) -> None:
    await confirm_normal(rooms, 10, noise=0.58)
    run = await rooms.recalibration.recalibrate("flat", trigger="test")
    assert run.outcome == "insufficient" and run.threshold_version is None
    assert rooms.keeper.board.get("flat").version == 1


async def test_the_scheduled_run_steps_every_model_and_refreshes_drift_and_review(
    rooms: Rooms,
) -> None:
    await confirm_normal(rooms, 3000, noise=0.58)
    rooms.score("pump", np.zeros((3, 4)))
    await rooms.recalibration.run_scheduled("interval")
    runs = await rooms.keeper.runs(None, limit=10)
    assert sorted((r.model, r.trigger, r.outcome) for r in runs) == [
        ("flat", "interval", "applied"),
        ("windowed", "interval", "insufficient"),
    ]
    assert rooms.registry.get_sample_value("anomaly_review_queue_size", {"model": "flat"}) == 3.0
    assert (
        rooms.registry.get_sample_value("anomaly_drift_ks_statistic", {"model": "flat"}) is not None
    )


async def test_a_threshold_on_smoothed_scores_is_not_recalibrated_from_raw_errors(
    tmp_path: Path,
) -> None:
    """Labels carry raw errors; a quantile of them would loosen a threshold set on smoothed
    scores without a word. The run says why and proposes nothing."""
    ewma = {"method": "ewma", "window": 1, "alpha": 0.3}
    build_test_artifact(tmp_path / "models", name="smooth", smoothing=ewma)
    async with open_rooms(tmp_path) as rooms:
        run = await rooms.recalibration.recalibrate("smooth", trigger="test")
    assert run.outcome == "insufficient"
    assert "ewma:0.3-smoothed scores" in run.message and "raw errors" in run.message
    assert rooms.keeper.board.get("smooth").version == 1
