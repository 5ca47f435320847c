"""Drift checks on the store's confirmed normals, with their gauges, without HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rooms_support import Rooms, open_rooms

from service.calibration.drift import NormalMemory, normal_memory
from service.calibration.drift_monitor import model_memory
from service.calibration.selections import CarriedReadings
from service.scoring.registry import LoadedModel


@pytest.fixture
async def rooms(tmp_path: Path) -> AsyncIterator[Rooms]:
    async with open_rooms(tmp_path) as built:
        yield built


async def confirm_normal(rooms: Rooms, n: int, noise: float) -> None:
    values = noise * np.random.default_rng(7).normal(size=(n, 4))
    await rooms.desk.submit(
        CarriedReadings("flat", "pump", values.astype(np.float32), None),
        "normal",
        None,
        author="olga",
        client_label_id=None,
        content_hash=str(noise),
    )


def recommendation(rooms: Rooms) -> list[str]:
    return [
        name
        for name in ("none", "recalibrate", "retrain")
        if rooms.registry.get_sample_value(
            "anomaly_drift_recommendation", {"model": "flat", "recommendation": name}
        )
        == 1.0
    ]


async def test_without_enough_labels_drift_is_not_judged(rooms: Rooms) -> None:
    checked = await rooms.drift.check("flat")
    assert checked.model.name == "flat" and not checked.report.sufficient
    assert checked.report.recommendation == "none" and recommendation(rooms) == ["none"]
    assert [c.model.name for c in await rooms.drift.check_all()] == ["flat", "windowed"]


async def test_normals_from_the_reference_law_do_not_drift(rooms: Rooms) -> None:
    await confirm_normal(rooms, 400, noise=1.0)  # the test model's reference law
    checked = await rooms.drift.check("flat")
    assert checked.report.sufficient and not checked.report.drifted
    assert recommendation(rooms) == ["none"]


async def test_a_shifted_error_law_is_reported_with_its_gauges(rooms: Rooms) -> None:
    await confirm_normal(rooms, 400, noise=2.0)
    checked = await rooms.drift.check("flat")
    assert checked.report.drifted and checked.report.recommendation != "none"
    assert recommendation(rooms) == [checked.report.recommendation]
    assert rooms.registry.get_sample_value(
        "anomaly_drift_ks_statistic", {"model": "flat"}
    ) == pytest.approx(checked.report.statistic)


async def test_normal_operations_memory_comes_from_training_or_the_whole_reference(
    rooms: Rooms,
) -> None:
    """As train recorded it; else from the reference when it is the whole calibration run;
    else unknown (an older artifact whose reference is a subsample): counted at raw size."""
    model = rooms.models.get("flat")
    from_reference = model_memory(model)
    assert from_reference == normal_memory(model.artifact.reference_errors)

    def with_manifest(**update: object) -> LoadedModel:
        manifest = model.manifest.model_copy(update=update)
        return replace(model, artifact=replace(model.artifact, manifest=manifest))

    recorded = {"normal_memory": {"reading": 7.0, "sensors": [2.0, 3.0, 4.0, 5.0]}}
    assert model_memory(with_manifest(metrics=recorded)) == NormalMemory(7.0, (2.0, 3.0, 4.0, 5.0))
    subsampled = model.manifest.threshold.model_copy(update={"n_calibration": 20_000})
    assert model_memory(with_manifest(threshold=subsampled)) is None
    # A hand-edited figure that train would never write falls back, as if absent.
    for bad in (
        {"sensors": [2.0, 3.0, 4.0, 5.0]},
        {"reading": None, "sensors": [2.0, 3.0, 4.0, 5.0]},
        {"reading": 0.0, "sensors": [2.0, 3.0, 4.0, 5.0]},
        {"reading": 7.0, "sensors": [2.0, float("nan"), 4.0, 5.0]},
        {"reading": 7.0, "sensors": [2.0, 3.0]},
        {"reading": True, "sensors": [2.0, 3.0, 4.0, 5.0]},
    ):
        assert model_memory(with_manifest(metrics={"normal_memory": bad})) == from_reference
