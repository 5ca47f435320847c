"""The whole feedback loop through the real app: score → confirm → recalibrate → decide.

Runs on the conftest's scripted model with its threshold at the 99th percentile of its own
error law, so confirmed normals with a little more noise move the threshold by a known,
modest amount, and a burst of true anomalies mislabelled as normal would move it a lot.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from calibration_support import (
    ADMIN,
    API_KEYS,
    CHI2_4_Q99_OVER_4,
    OPERATOR,
    errors_of,
    readings,
)
from prometheus_client.parser import text_string_to_metric_families

MODEL = "test-plant"
BASE = CHI2_4_Q99_OVER_4


@pytest.fixture
def loop_models(tmp_path: Path, write_test_artifact: Any) -> Path:
    folder = tmp_path / "loop-models"
    write_test_artifact(folder, threshold=BASE)
    return folder


def loop_settings(models_dir: Path) -> dict[str, Any]:
    return {
        "models_dir": models_dir,
        "api_keys": API_KEYS,
        "recalibration_interval_s": 3600.0,  # runs are triggered by the admin endpoint
        "recalibration_label_trigger": 0,
        "recalibration_min_samples": 50,
        "recalibration_max_change": 0.2,
        "review_audit_size": 10,
    }


async def score(
    client: httpx.AsyncClient, stream: str, values: np.ndarray, t0: float = 0.0
) -> dict[str, Any]:
    body = {
        "stream_id": stream,
        "readings": [
            {"values": row.tolist(), "timestamp": 1_800_000_000.0 + t0 + i}
            for i, row in enumerate(values)
        ],
    }
    response = await client.post("/v1/score", json=body)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def metric(client: httpx.AsyncClient, name: str, **labels: str) -> float | None:
    text = (await client.get("/metrics")).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


async def label_range(
    client: httpx.AsyncClient, label: str, stream: str, start: float, n: int
) -> httpx.Response:
    """Label the ``n`` readings of ``stream`` timestamped from ``start``, one a second."""
    time_range = {"stream_id": stream, "start": start, "end": start + n - 1}
    return await client.post(
        "/v1/feedback", json={"label": label, "time_range": time_range}, headers=OPERATOR
    )


async def recalibrate(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.post(f"/v1/admin/thresholds/{MODEL}/recalibrate", headers=ADMIN)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    return run


async def current(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get(f"/v1/admin/thresholds/{MODEL}", headers=ADMIN)
    assert response.status_code == 200, response.text
    history: dict[str, Any] = response.json()
    return history


async def test_feedback_recalibrates_within_the_cap_and_guards_against_bad_labels(
    make_client: Any, loop_models: Path
) -> None:
    client = await make_client(**loop_settings(loop_models))
    rng = np.random.default_rng(3)

    # 1. A slightly noisier but normal period: a few false alarms at the training threshold,
    # over enough readings that their share shows the threshold too low.
    n = 1200
    normal = readings(rng, n, noise=1.08)
    scored = await score(client, "line-1", normal)
    assert scored["threshold_version"] == 1
    errors = np.array([r["error"] for r in scored["results"]])
    np.testing.assert_allclose(errors, errors_of(normal), rtol=1e-6)
    flagged = [r for r in scored["results"] if r["anomaly"]]
    assert flagged, "the noisier period must produce false alarms"

    # 2. The review queue offers the alerts and an audit sample of unflagged readings.
    queue = (await client.get("/v1/feedback/review-queue", headers=OPERATOR)).json()
    assert queue["audit_sample"] and all(not r["anomaly"] for r in queue["audit_sample"])
    assert all(r["alert"] for r in queue["alerts"])
    assert queue["size"] == len(queue["alerts"]) + len(queue["audit_sample"])

    # 3. The operator confirms the false alarms, then the whole period, as normal.
    response = await client.post(
        "/v1/feedback",
        json={"label": "normal", "reading_ids": [r["reading_id"] for r in flagged]},
        headers=OPERATOR,
    )
    assert response.status_code == 201, response.text
    assert {lab["author"] for lab in response.json()["labels"]} == {"olga-operator"}
    assert all(lab["threshold_version"] == 1 for lab in response.json()["labels"])
    response = await label_range(client, "normal", "line-1", 1_800_000_000.0, n)
    assert response.status_code == 201, response.text
    assert response.json()["count"] == n
    queue = (await client.get("/v1/feedback/review-queue", headers=OPERATOR)).json()
    assert queue["alerts"] == [] and queue["audit_sample"] == []  # everything is labelled

    # 4. Recalibration applies the 99th percentile of the confirmed normals (each once).
    run = await recalibrate(client)
    expected = float(np.quantile(errors, 0.99))
    assert run["outcome"] == "applied", run
    assert run["n_samples"] == n
    assert run["candidate"] == pytest.approx(expected, rel=1e-9)
    assert 0.01 < expected / BASE - 1 <= 0.2
    history = await current(client)
    assert history["current"]["version"] == 2
    assert history["current"]["value"] == pytest.approx(expected)
    v2 = history["versions"][-1]
    assert (v2["source"], v2["author"]) == ("recalibration", "recalibrator")
    assert v2["statistics"]["n_samples"] == n

    # 5. Decisions change: a reading flagged before is not flagged now.
    borderline = [r for r in flagged if BASE < r["error"] < expected]
    assert borderline, "some false alarm must lie between the old and new thresholds"
    index = next(
        i for i, r in enumerate(scored["results"]) if r["reading_id"] == borderline[0]["reading_id"]
    )
    rescored = await score(client, "line-1-replay", normal[index : index + 1])
    assert rescored["threshold_version"] == 2
    assert rescored["results"][0]["anomaly"] is False
    assert rescored["results"][0]["error"] == pytest.approx(borderline[0]["error"])

    # 6. ... and so do the metrics.
    assert await metric(client, "anomaly_threshold", model=MODEL) == pytest.approx(expected)
    assert await metric(client, "anomaly_threshold_baseline", model=MODEL) == pytest.approx(BASE)
    assert await metric(client, "anomaly_threshold_version", model=MODEL) == 2
    assert await metric(client, "anomaly_threshold_drift_ratio", model=MODEL) == pytest.approx(
        expected / BASE - 1
    )
    assert (
        await metric(client, "anomaly_recalibration_runs_total", model=MODEL, outcome="applied")
        == 1
    )
    assert await metric(
        client, "anomaly_feedback_labels_total", model=MODEL, label="normal"
    ) == n + len(flagged)
    assert (
        await metric(client, "anomaly_last_recalibration_timestamp_seconds", model=MODEL) or 0
    ) > 0
    assert await metric(client, "anomaly_threshold_pending_approvals", model=MODEL) == 0

    # 7. A burst of real anomalies mislabelled as normal, picked by id: labels picked that
    # way do not measure how often normal operation exceeds the threshold (alerts are
    # over-represented among them), the time range does, and it says 1%: it stays.
    burst = readings(rng, 400, noise=3.0)
    burst_scored = await score(client, "line-2", burst, t0=10_000)
    burst_ids = [r["reading_id"] for r in burst_scored["results"]]
    response = await client.post(
        "/v1/feedback", json={"label": "normal", "reading_ids": burst_ids}, headers=OPERATOR
    )
    assert response.status_code == 201
    run = await recalibrate(client)
    assert run["outcome"] == "unchanged", run
    assert f"of {n} representative labels (1.00%)" in run["message"], run["message"]
    assert "which holds the 1.00% the threshold stands for" in run["message"]
    assert await metric(client, "anomaly_threshold_pending_approvals", model=MODEL) == 0

    # 8. A noisier period confirmed normal as a whole shows the threshold too low; with the
    # burst among the confirmed normals the candidate moves it past the cap: it waits.
    shift = readings(rng, n, noise=1.35)
    await score(client, "line-4", shift, t0=20_000)
    start = 1_800_000_000.0 + 20_000
    response = await label_range(client, "normal", "line-4", start, n)
    assert response.status_code == 201, response.text
    run = await recalibrate(client)
    assert run["outcome"] == "pending", run
    assert run["statistics"]["exceedance_from"] == "representative labels"
    assert run["candidate"] / expected - 1 > 0.2
    history = await current(client)
    assert history["current"]["version"] == 2
    assert history["current"]["value"] == pytest.approx(expected)
    pending = history["current"]["pending"]
    assert pending is not None and pending["id"] == run["pending_id"]
    assert pending["candidate"] == pytest.approx(run["candidate"])
    assert await metric(client, "anomaly_threshold_pending_approvals", model=MODEL) == 1
    assert (
        await metric(client, "anomaly_recalibration_runs_total", model=MODEL, outcome="pending")
        == 1
    )
    still = await score(client, "line-1-replay", burst[:20])
    assert still["threshold_version"] == 2

    # 9. Reject discards it; the next run holds a new one; approve applies that one.
    response = await client.post(
        f"/v1/admin/pending-thresholds/{pending['id']}/reject",
        json={"reason": "those were pump faults"},
        headers=ADMIN,
    )
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    assert response.json()["decided_by"] == "alice-admin"
    assert await metric(client, "anomaly_threshold_pending_approvals", model=MODEL) == 0
    assert (await current(client))["current"]["version"] == 2
    again = await client.post(
        f"/v1/admin/pending-thresholds/{pending['id']}/approve", json={}, headers=ADMIN
    )
    assert again.status_code == 409  # a rejected candidate cannot be approved later
    run = await recalibrate(client)
    assert run["outcome"] == "pending" and run["pending_id"] != pending["id"]
    response = await client.post(
        f"/v1/admin/pending-thresholds/{run['pending_id']}/approve",
        json={"reason": "checked on site"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    approved = response.json()
    assert (approved["version"], approved["source"], approved["author"]) == (
        3,
        "approval",
        "alice-admin",
    )
    assert approved["value"] == pytest.approx(run["candidate"])
    assert (await score(client, "line-3", normal[:1]))["threshold_version"] == 3

    # 10. Rollback restores version 2's value as version 4.
    response = await client.post(
        f"/v1/admin/thresholds/{MODEL}/rollback",
        json={"version": 2, "reason": "approval was a mistake"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    assert (response.json()["version"], response.json()["source"]) == (4, "rollback")
    after = await score(client, "line-3", normal[:1])
    assert after["threshold_version"] == 4
    assert after["threshold"] == pytest.approx(expected)
    assert await metric(client, "anomaly_threshold_version", model=MODEL) == 4

    # 11. Correcting the burst and the noisier period to "anomaly" takes them out of the
    # sample: no move needed.
    response = await client.post(
        "/v1/feedback", json={"label": "anomaly", "reading_ids": burst_ids}, headers=OPERATOR
    )
    assert response.status_code == 201
    response = await label_range(client, "anomaly", "line-4", start, n)
    assert response.status_code == 201
    run = await recalibrate(client)
    assert run["outcome"] == "unchanged", run
    assert run["n_samples"] == n
    history = await current(client)
    assert [v["source"] for v in history["versions"]] == [
        "manifest",
        "recalibration",
        "approval",
        "rollback",
    ]


async def test_threshold_survives_a_restart_and_manual_setting_is_versioned(
    make_client: Any, loop_models: Path
) -> None:
    first = await make_client(**loop_settings(loop_models))
    response = await first.post(
        f"/v1/admin/thresholds/{MODEL}",
        json={"value": BASE * 1.5, "reason": "commissioning a new pump"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    assert (response.json()["version"], response.json()["source"]) == (2, "manual")
    # Same store, new process-equivalent: the app restores version 2, not the manifest's.
    second = await make_client(**loop_settings(loop_models))
    model = (await second.get(f"/v1/models/{MODEL}")).json()
    assert model["threshold"]["version"] == 2
    assert model["threshold"]["current"] == pytest.approx(BASE * 1.5)
    assert model["threshold"]["baseline"] == pytest.approx(BASE)
    rejected = await second.post(
        f"/v1/admin/thresholds/{MODEL}", json={"value": -1, "reason": "x"}, headers=ADMIN
    )
    assert rejected.status_code == 422
    missing = await second.post(
        f"/v1/admin/thresholds/{MODEL}/rollback", json={"version": 99}, headers=ADMIN
    )
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("unknown-threshold-version")


async def test_background_task_recalibrates_after_enough_labels(
    make_client: Any, loop_models: Path
) -> None:
    settings = loop_settings(loop_models) | {
        "recalibration_interval_s": 0.05,
        "recalibration_min_samples": 50,
    }
    client = await make_client(**settings)
    rng = np.random.default_rng(5)
    values = readings(rng, 120, noise=1.05)
    response = await client.post(
        "/v1/feedback",
        json={"label": "normal", "readings": {"values": values.tolist(), "stream_id": "s"}},
        headers=OPERATOR,
    )
    assert response.status_code == 201
    for _ in range(100):
        runs = (await client.get("/v1/admin/recalibration-runs", headers=ADMIN)).json()
        if any(r["outcome"] != "insufficient" for r in runs):
            break
        await asyncio.sleep(0.05)
    decided = [r for r in runs if r["outcome"] != "insufficient"]
    assert decided and decided[0]["trigger"] in {"interval", "labels"}
    assert decided[-1]["n_samples"] == 120


async def test_a_failed_run_is_recorded_counted_and_changes_nothing(
    make_client: Any, loop_models: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(**loop_settings(loop_models))
    store = client.state.store

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise OSError("disk I/O error")

    monkeypatch.setattr(store, "normal_sample", broken)
    response = await client.post(f"/v1/admin/thresholds/{MODEL}/recalibrate", headers=ADMIN)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    monkeypatch.undo()
    runs = (await client.get("/v1/admin/recalibration-runs", headers=ADMIN)).json()
    assert [(r["outcome"], r["message"]) for r in runs] == [("failed", "OSError: disk I/O error")]
    assert (
        await metric(client, "anomaly_recalibration_runs_total", model=MODEL, outcome="failed") == 1
    )
    assert (await current(client))["current"]["version"] == 1


async def test_model_reload_keeps_or_persists_thresholds(
    make_client: Any, loop_models: Path, write_test_artifact: Any
) -> None:
    client = await make_client(**loop_settings(loop_models))
    manual = await client.post(
        f"/v1/admin/thresholds/{MODEL}",
        json={"value": BASE * 1.1, "reason": "site tuning"},
        headers=ADMIN,
    )
    assert manual.status_code == 201
    # Reloading the same model version keeps the threshold in force.
    assert (await client.post("/v1/admin/models/reload", headers=ADMIN)).status_code == 200
    model = (await client.get(f"/v1/models/{MODEL}")).json()
    assert (model["threshold"]["version"], model["threshold"]["current"]) == (
        2,
        pytest.approx(BASE * 1.1),
    )
    # A new model version starts from its own manifest threshold, persisted as version 3.
    write_test_artifact(loop_models, version="2", threshold=BASE * 0.9)
    reloaded = await client.post(f"/v1/admin/models/{MODEL}/reload", headers=ADMIN)
    assert reloaded.status_code == 200, reloaded.text
    model = (await client.get(f"/v1/models/{MODEL}")).json()
    assert model["version"] == "2"
    assert (model["threshold"]["version"], model["threshold"]["current"]) == (
        3,
        pytest.approx(BASE * 0.9),
    )
    history = await current(client)
    assert [(v["version"], v["model_version"], v["source"]) for v in history["versions"]] == [
        (1, "1", "manifest"),
        (2, "1", "manual"),
        (3, "2", "manifest"),
    ]
    # Rolling back to a version set for the old model version is refused.
    refused = await client.post(
        f"/v1/admin/thresholds/{MODEL}/rollback", json={"version": 2}, headers=ADMIN
    )
    assert refused.status_code == 409


async def test_robust_variant_is_median_plus_k_mad(make_client: Any, loop_models: Path) -> None:
    settings = loop_settings(loop_models) | {
        "recalibration_method": "robust",
        "recalibration_mad_k": 6.0,
        "recalibration_max_change": 0.5,
    }
    client = await make_client(**settings)
    values = readings(np.random.default_rng(11), 300, noise=1.0)
    response = await client.post(
        "/v1/feedback",
        json={"label": "normal", "readings": {"values": values.tolist()}},
        headers=OPERATOR,
    )
    assert response.status_code == 201
    errors = np.array([lab["error"] for lab in response.json()["labels"]])
    median = float(np.median(errors))
    expected = median + 6.0 * 1.4826 * float(np.median(np.abs(errors - median)))
    run = await recalibrate(client)
    assert run["candidate"] == pytest.approx(expected, rel=1e-9)
    assert run["statistics"]["method"] == "robust"
    change = abs(expected / BASE - 1)
    assert 0.01 <= change <= 0.5  # the seed gives a move inside the configured cap
    assert run["outcome"] == "applied"
    assert (await current(client))["current"]["value"] == pytest.approx(expected)


async def test_with_recalibration_off_drift_is_still_checked(
    make_client: Any, loop_models: Path
) -> None:
    """ANOMALY_RECALIBRATION_ENABLED=false stopped the background task altogether: the drift
    gauges (and the AnomalyDistributionDrift alert on them) never moved, although setting
    thresholds by hand is when drift matters most. Now only the threshold steps stop."""
    settings = loop_settings(loop_models) | {
        "recalibration_enabled": False,
        "recalibration_interval_s": 0.05,
    }
    client = await make_client(**settings)
    await score(client, "line-1", readings(np.random.default_rng(5), 200, noise=1.5))
    response = await label_range(client, "normal", "line-1", 1_800_000_000.0, 200)
    assert response.status_code == 201, response.text
    statistic = None
    for _ in range(200):
        statistic = await metric(client, "anomaly_drift_ks_statistic", model=MODEL)
        if statistic is not None and statistic == statistic:  # NaN until judged
            break
        await asyncio.sleep(0.05)
    assert statistic is not None and statistic > 0.1, statistic
    runs = await client.get("/v1/admin/recalibration-runs", headers=ADMIN)
    assert runs.status_code == 200 and runs.json() == [], runs.text
    assert (await current(client))["current"]["version"] == 1
