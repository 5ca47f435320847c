"""Drift checks on the store's confirmed normals, with their gauges, without HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from rooms_support import Rooms, open_rooms

from service.calibration.selections import CarriedReadings


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
