"""A model that declares its score smoothing gets it, and flags what its threshold was set
for: the smoothed score above 1. Settings that name a method override it; models written
before smoothing was declared keep the settings' default (median of 3)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from calibration_support import ADMIN, API_KEYS
from conftest import TEST_MODEL, ClientFactory, build_test_artifact

EWMA = {"method": "ewma", "window": 1, "alpha": 0.5}
# Scores (error / threshold 1, error = mean of 4 squared z): a reading [a, 0, 0, 0] scores a²/4.
SPIKE = [math.sqrt(6.0), 0.0, 0.0, 0.0]  # scores 1.5
QUIET = [0.0, 0.0, 0.0, 0.0]


async def scores_of(client: Any, readings: list[list[float]]) -> list[dict[str, Any]]:
    response = await client.post(
        "/v1/score", json={"model": TEST_MODEL, "stream_id": "s", "readings": readings}
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


@pytest.fixture
def declared(tmp_path: Path) -> Path:
    folder = tmp_path / "declared"
    build_test_artifact(folder, smoothing=EWMA)
    return folder


async def test_the_declared_smoothing_is_applied_and_decides_the_flag(
    declared: Path, make_client: ClientFactory
) -> None:
    client = await make_client(models_dir=declared)
    results = await scores_of(client, [QUIET, SPIKE, QUIET, SPIKE, SPIKE, SPIKE])
    assert [r["score"] for r in results] == pytest.approx([0, 1.5, 0, 1.5, 1.5, 1.5])
    smoothed = [0.0, 0.75, 0.375, 0.9375, 1.21875, 1.359375]
    assert [r["smoothed_score"] for r in results] == pytest.approx(smoothed)
    # One reading above the threshold is not a flag; the smoothed score holding above is.
    assert [r["anomaly"] for r in results] == [False, False, False, False, True, True]
    model = (await client.get(f"/v1/models/{TEST_MODEL}")).json()
    assert model["smoothing"] == {**EWMA, "start": None}
    assert model["glitch_guard"] is False


BIG = [math.sqrt(12.0), 0.0, 0.0, 0.0]  # error 3: scores 1.5 at threshold 2


@pytest.fixture
def started(tmp_path: Path) -> Path:
    folder = tmp_path / "started"
    build_test_artifact(folder, smoothing={**EWMA, "start": 0.8}, threshold=2.0)
    return folder


async def test_a_new_stream_starts_where_the_model_declares(
    started: Path, make_client: ClientFactory
) -> None:
    client = await make_client(models_dir=started)
    results = await scores_of(client, [BIG, BIG, QUIET])
    # From 0.4 (the start 0.8 in the threshold's units), not from the first score: a first
    # high score weighs as any later one does, and alone it does not flag.
    assert [r["smoothed_score"] for r in results] == pytest.approx([0.95, 1.225, 0.6125])
    assert [r["anomaly"] for r in results] == [False, True, False]
    model = (await client.get(f"/v1/models/{TEST_MODEL}")).json()
    assert model["smoothing"] == {**EWMA, "start": 0.8}


async def test_settings_that_override_the_smoothing_start_from_the_first_score(
    started: Path, make_client: ClientFactory
) -> None:
    client = await make_client(models_dir=started, smoothing_method="mean", smoothing_window=2)
    results = await scores_of(client, [BIG, BIG, QUIET])
    assert [r["smoothed_score"] for r in results] == pytest.approx([1.5, 1.5, 0.75])


async def test_settings_that_name_a_method_override_the_declared_one(
    declared: Path, make_client: ClientFactory
) -> None:
    client = await make_client(models_dir=declared, smoothing_method="mean", smoothing_window=2)
    results = await scores_of(client, [QUIET, SPIKE, SPIKE])
    assert [r["smoothed_score"] for r in results] == pytest.approx([0, 0.75, 1.5])
    assert [r["anomaly"] for r in results] == [False, False, True]


async def test_a_model_that_declares_nothing_keeps_the_default_median(
    make_client: ClientFactory,
) -> None:
    client = await make_client()  # the default test model: no declared smoothing
    results = await scores_of(client, [QUIET, SPIKE, QUIET, QUIET])
    assert [r["smoothed_score"] for r in results] == pytest.approx([0, 0.75, 0, 0])
    assert [r["anomaly"] for r in results] == [False, True, False, False]  # raw, as before


@pytest.mark.parametrize(
    "smoothing",
    [{**EWMA, "start": 0.8}, {"method": "median", "window": 3, "alpha": 1.0, "start": 0.8}],
)
async def test_a_threshold_changed_mid_stream_rescales_what_the_stream_remembers(
    tmp_path: Path, make_client: ClientFactory, smoothing: dict[str, Any]
) -> None:
    """Scores are errors over the threshold in force: after a change, a stream's remembered
    scores are put over the new one, so its smoothed score is the one a stream that had
    always been scored under it would show (a new stream's, fed the same readings)."""
    build_test_artifact(tmp_path / "m", smoothing=smoothing, threshold=2.0)
    client = await make_client(api_keys=API_KEYS, models_dir=tmp_path / "m")
    run = [BIG, QUIET, BIG, BIG, QUIET, BIG]

    async def stream(name: str, readings: list[list[float]]) -> list[float]:
        response = await client.post(
            "/v1/score", json={"model": TEST_MODEL, "stream_id": name, "readings": readings}
        )
        assert response.status_code == 200, response.text
        return [r["smoothed_score"] for r in response.json()["results"]]

    await stream("open", run[:3])
    changed = await client.post(
        f"/v1/admin/thresholds/{TEST_MODEL}", json={"value": 4.0, "reason": "test"}, headers=ADMIN
    )
    assert changed.status_code in (200, 201), changed.text
    status = (await client.get("/v1/streams/open", params={"model": TEST_MODEL})).json()
    after = await stream("open", run[3:])
    fresh = await stream("fresh", run)
    assert after == pytest.approx(fresh[3:])
    assert status["smoothed_score"] == pytest.approx(fresh[2])
