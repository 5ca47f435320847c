"""Drift status and KS metrics through the real app, on the conftest's test model whose
reference errors are χ²(1) per sensor: unshifted confirmed normals keep drift off, errors
from a wider distribution turn it on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from calibration_support import ADMIN, API_KEYS, OPERATOR, readings
from prometheus_client.parser import text_string_to_metric_families

MODEL = "test-plant"


async def gauges(client: Any) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = (await client.get("/metrics")).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.startswith("anomaly_drift")
    }


def gauge(values: dict[Any, float], name: str, **labels: str) -> float:
    return values[(name, tuple(sorted({"model": MODEL, **labels}.items())))]


async def confirm_normal(client: Any, values: np.ndarray) -> None:
    response = await client.post(
        "/v1/feedback",
        json={"label": "normal", "readings": {"values": values.tolist(), "stream_id": "p1"}},
        headers=OPERATOR,
    )
    assert response.status_code == 201, response.text


async def test_unshifted_normals_leave_drift_off(make_client: Any, tmp_path: Path) -> None:
    client = await make_client(api_keys=API_KEYS, store_path=tmp_path / "off.sqlite3")
    before = await client.get(f"/v1/drift/{MODEL}", headers=OPERATOR)
    assert before.status_code == 200
    assert before.json()["sufficient"] is False and before.json()["recommendation"] == "none"
    await confirm_normal(client, readings(np.random.default_rng(42), 300))
    status = (await client.get(f"/v1/drift/{MODEL}", headers=ADMIN)).json()
    assert status["sufficient"] and status["n_recent"] == 300 and status["n_reference"] == 200
    assert status["recommendation"] == "none", status
    assert status["drifted"] is False and status["drifted_sensors"] == []
    assert status["pvalue"] > status["alpha"] or status["statistic"] < status["min_effect"]
    assert len(status["sensors"]) == 4
    values = await gauges(client)
    assert gauge(values, "anomaly_drift_ks_statistic") == status["statistic"]
    assert gauge(values, "anomaly_drift_ks_pvalue") == status["pvalue"]
    assert gauge(values, "anomaly_drift_sensors_flagged") == 0
    assert gauge(values, "anomaly_drift_recommendation", recommendation="none") == 1
    assert gauge(values, "anomaly_drift_recommendation", recommendation="retrain") == 0


async def test_shifted_normals_turn_drift_on(make_client: Any, tmp_path: Path) -> None:
    client = await make_client(api_keys=API_KEYS, store_path=tmp_path / "on.sqlite3")
    await confirm_normal(client, readings(np.random.default_rng(43), 300, noise=1.5))
    statuses = (await client.get("/v1/drift", headers=OPERATOR)).json()
    assert [s["model"] for s in statuses] == [MODEL]
    status = statuses[0]
    assert status["drifted"] is True
    assert status["statistic"] >= 0.3 and status["pvalue"] < 1e-6
    assert status["recommendation"] == "retrain"
    assert len(status["drifted_sensors"]) >= 3
    assert all(s["adjusted_pvalue"] >= s["pvalue"] for s in status["sensors"])
    values = await gauges(client)
    assert gauge(values, "anomaly_drift_ks_statistic") >= 0.3
    assert gauge(values, "anomaly_drift_ks_pvalue") < 1e-6
    assert gauge(values, "anomaly_drift_sensors_flagged") == len(status["drifted_sensors"])
    assert gauge(values, "anomaly_drift_recommendation", recommendation="retrain") == 1
    assert gauge(values, "anomaly_drift_recommendation", recommendation="none") == 0


async def test_moderate_shift_recommends_recalibration(make_client: Any, tmp_path: Path) -> None:
    client = await make_client(api_keys=API_KEYS, store_path=tmp_path / "mid.sqlite3")
    await confirm_normal(client, readings(np.random.default_rng(44), 400, noise=1.15))
    status = (await client.get(f"/v1/drift/{MODEL}", headers=OPERATOR)).json()
    assert status["drifted"] is True, status
    assert 0.1 <= status["statistic"] < 0.3
    assert status["recommendation"] == "recalibrate"


async def test_confirmed_anomalies_never_count_as_recent_normals(
    make_client: Any, tmp_path: Path
) -> None:
    client = await make_client(api_keys=API_KEYS, store_path=tmp_path / "anom.sqlite3")
    response = await client.post(
        "/v1/feedback",
        json={
            "label": "anomaly",
            "readings": {"values": readings(np.random.default_rng(45), 300, 3.0).tolist()},
        },
        headers=OPERATOR,
    )
    assert response.status_code == 201
    status = (await client.get(f"/v1/drift/{MODEL}", headers=OPERATOR)).json()
    assert status["n_recent"] == 0 and status["recommendation"] == "none"


async def test_unknown_model_is_404(make_client: Any) -> None:
    client = await make_client(api_keys=API_KEYS)
    response = await client.get("/v1/drift/nope", headers=OPERATOR)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
