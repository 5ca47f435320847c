"""Acceptance: the bundled model, served with default settings, on the synthetic plant.

A sustained fault (a step on one sensor, a stuck sensor) raises the alert as soon as k of
the last n smoothed scores exceed the threshold, naming the faulty sensor; a one-reading
spike is flagged as anomalous but raises no alert. The plant run (seed 31415) is not one
the model was trained, calibrated or evaluated on. The model reads a window of readings, so
a stream's first ``WINDOW - 1`` readings only warm it up.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import AppClient, ClientFactory

from models.synthetic import AnomalyEvent, generate_plant, inject_event
from service.settings import REPO_MODELS_DIR, Settings

MODEL = "synthetic-plant"
SEED = 31415
N_READINGS = 800
FAULT_START = 300
WINDOW = 20
DEFAULTS = Settings.model_fields


@pytest.fixture
async def bundled(make_client: ClientFactory) -> AppClient:
    return await make_client(models_dir=REPO_MODELS_DIR)


@pytest.fixture(scope="module")
def plant() -> np.ndarray:
    values: np.ndarray = generate_plant(N_READINGS, seed=SEED).values
    return values


async def score_stream(client: AppClient, stream: str, values: np.ndarray) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for start in range(0, len(values), 250):
        body = {"stream_id": stream, "readings": values[start : start + 250].tolist()}
        response = await client.post("/v1/score", json=body)
        assert response.status_code == 200, response.text
        results.extend(response.json()["results"])
    return results


def first_alert(results: list[dict[str, Any]]) -> int | None:
    return next((i for i, r in enumerate(results) if r["alert_state"] == "alert"), None)


def assert_k_of_n_rule(results: list[dict[str, Any]], at: int) -> None:
    """The alert starts at the first reading where k of the last n smoothed scores are > 1."""
    k, n = DEFAULTS["alert_k"].default, DEFAULTS["alert_n"].default
    high = [r.get("smoothed_score", 0.0) > 1.0 for r in results]  # absent while warming up
    counts = [sum(high[max(0, i - n + 1) : i + 1]) for i in range(len(high))]
    assert counts[at] >= k
    assert all(c < k for c in counts[:at])


async def test_bundled_model_is_served_by_default(bundled: AppClient) -> None:
    listing = (await bundled.get("/v1/models")).json()
    assert listing["default_model"] == MODEL
    detail = (await bundled.get(f"/v1/models/{MODEL}")).json()
    assert detail["n_sensors"] == 50 and detail["window"] == WINDOW
    assert detail["glitch_guard"] is True
    assert (await bundled.get("/readyz")).status_code == 200


async def test_normal_operation_raises_no_alert(bundled: AppClient, plant: np.ndarray) -> None:
    results = await score_stream(bundled, "normal", plant)
    warming = [r["alert_state"] == "warming_up" for r in results]
    assert warming == [i < WINDOW - 1 for i in range(N_READINGS)]
    assert first_alert(results) is None
    assert sum(r.get("anomaly", False) for r in results) <= 0.02 * N_READINGS


async def test_step_fault_alerts_after_k_of_n(bundled: AppClient, plant: np.ndarray) -> None:
    sensor = 7
    faulty = inject_event(
        plant,
        AnomalyEvent("step", FAULT_START, FAULT_START + 60, sensor, 3.0),
        sensor_std=plant.std(axis=0),
    )
    results = await score_stream(bundled, "step", faulty)
    at = first_alert(results)
    assert at is not None
    # the model declares no smoothing: its score is high from the fault's first reading,
    # and the alert fires at the k-th
    assert at == FAULT_START + DEFAULTS["alert_k"].default - 1
    assert_k_of_n_rule(results, at)
    names = (await bundled.get(f"/v1/models/{MODEL}")).json()["sensors"]
    assert results[at]["top_sensors"][0]["sensor"] == names[sensor]
    assert all(r["anomaly"] for r in results[FAULT_START : FAULT_START + 60])


@pytest.mark.parametrize("sensor", [7, 40])
async def test_stuck_sensor_alerts(bundled: AppClient, plant: np.ndarray, sensor: int) -> None:
    faulty = inject_event(plant, AnomalyEvent("stuck", FAULT_START, FAULT_START + 200, sensor, 0))
    results = await score_stream(bundled, f"stuck-{sensor}", faulty)
    at = first_alert(results)
    assert at is not None and FAULT_START < at < FAULT_START + 200
    assert_k_of_n_rule(results, at)
    names = (await bundled.get(f"/v1/models/{MODEL}")).json()["sensors"]
    assert results[at]["top_sensors"][0]["sensor"] == names[sensor]


async def test_single_spike_is_flagged_but_not_alerted(
    bundled: AppClient, plant: np.ndarray
) -> None:
    sensor = 12
    faulty = inject_event(
        plant,
        AnomalyEvent("spike", FAULT_START, FAULT_START + 1, sensor, 8.0),
        sensor_std=plant.std(axis=0),
    )
    results = await score_stream(bundled, "blip", faulty)
    blip = results[FAULT_START]
    # twice the threshold: the window of 20 readings averages the blip's error over them
    assert blip["anomaly"] is True and blip["score"] > 2
    names = (await bundled.get(f"/v1/models/{MODEL}")).json()["sensors"]
    assert blip["top_sensors"][0]["sensor"] == names[sensor]
    assert first_alert(results) is None
