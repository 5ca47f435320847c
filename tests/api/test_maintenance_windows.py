"""/v1/maintenance-windows through the real app: scopes, the audit trail, suppressed alerts
in the score reply and /metrics, readings kept out of learning, and the learning freeze."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from calibration_support import ADMIN, API_KEYS, OPERATOR, SCORER, readings

from service.calibration.records import LabelFilter

MODEL = "test-plant"
FAULT = np.full((6, 4), 3.0)  # error 9 on the threshold-1 test model: an alert after k=3


@pytest.fixture
async def client(make_client: Any) -> Any:
    return await make_client(api_keys=API_KEYS, review_audit_size=50)


async def open_window(client: Any, **body: Any) -> dict[str, Any]:
    body.setdefault("reason", "pump overhaul")
    response = await client.post("/v1/maintenance-windows", json=body, headers=ADMIN)
    assert response.status_code == 201, response.text
    window: dict[str, Any] = response.json()
    return window


async def score(client: Any, stream: str, values: np.ndarray) -> dict[str, Any]:
    response = await client.post(
        "/v1/score", json={"stream_id": stream, "readings": values.tolist()}, headers=SCORER
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_window_is_created_listed_ended_and_audited(client: Any) -> None:
    window = await open_window(
        client, stream_id="pump-1", modes=["suppress_alerts", "exclude_from_learning"]
    )
    assert window["status"] == "active" and window["author"] == "alice-admin"
    assert window["modes"] == ["suppress_alerts", "exclude_from_learning"]
    listed = (await client.get("/v1/maintenance-windows?current=true", headers=OPERATOR)).json()
    assert [w["id"] for w in listed] == [window["id"]]

    ended = await client.post(
        f"/v1/maintenance-windows/{window['id']}/end", json={"reason": "done"}, headers=ADMIN
    )
    assert ended.status_code == 200, ended.text
    body = ended.json()
    assert body["status"] == "over" and body["ended_by"] == "alice-admin"
    assert [(e["action"], e["reason"]) for e in body["events"]] == [
        ("created", "pump overhaul"),
        ("ended", "done"),
    ]
    again = await client.post(f"/v1/maintenance-windows/{window['id']}/end", json={}, headers=ADMIN)
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/maintenance-windows?current=true", headers=ADMIN)).json() == []
    missing = await client.get("/v1/maintenance-windows/999", headers=ADMIN)
    assert missing.status_code == 404


async def test_scopes_admin_sets_feedback_reads_others_refused(client: Any) -> None:
    body = {"modes": ["suppress_alerts"], "reason": "x"}
    assert (await client.post("/v1/maintenance-windows", json=body)).status_code == 401
    refused = await client.post("/v1/maintenance-windows", json=body, headers=OPERATOR)
    assert refused.status_code == 403
    assert (await client.get("/v1/maintenance-windows", headers=SCORER)).status_code == 403
    assert (await client.get("/v1/maintenance-windows", headers=OPERATOR)).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"modes": []}, 422, "modes"),
        ({"modes": ["suppress_alerts", "suppress_alerts"]}, 422, "modes"),
        ({"modes": ["suppress_alerts"], "stream_id": "a", "stream_prefix": "a"}, 422,
         "stream_prefix"),
        ({"modes": ["nap"]}, 422, "modes"),
        ({"modes": ["suppress_alerts"], "model": "no-such-model"}, 404, None),
        ({"modes": ["suppress_alerts"], "ends_at": "2001-01-01T00:00:00Z"}, 422, "ends_at"),
        ({"modes": ["suppress_alerts"], "starts_at": "2030-01-01T00:00:00"}, 422,
         "starts_at"),  # naive
    ],
)  # fmt: skip
async def test_bad_windows_are_refused_with_a_problem(
    client: Any, body: dict[str, Any], status: int, field: str | None
) -> None:
    response = await client.post(
        "/v1/maintenance-windows", json=body | {"reason": "x"}, headers=ADMIN
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    if field is not None:  # the body says which field to mend
        assert [error["field"] for error in response.json()["errors"]] == [field]


async def test_suppressed_alerts_are_scored_but_not_raised_nor_counted(client: Any) -> None:
    window = await open_window(client, stream_prefix="line-a.", modes=["suppress_alerts"])
    inside = await score(client, "line-a.pump", FAULT)
    outside = await score(client, "line-b.pump", FAULT)

    states = [r["alert_state"] for r in inside["results"]]
    assert states == ["normal", "normal", "suppressed", "suppressed", "suppressed", "suppressed"]
    assert all(r["anomaly"] and r["score"] == pytest.approx(9.0) for r in inside["results"])
    assert {r["suppressed_by_window"] for r in inside["results"]} == {window["id"]}
    assert inside["alerts_raised"] == 0 and not any(r["alert"] for r in inside["results"])
    assert outside["alerts_raised"] == 1 and "suppressed_by_window" not in outside["results"][0]

    registry = client.state.registry
    assert registry.get_sample_value("anomaly_alerts_total", {"model": MODEL}) == 1
    assert registry.get_sample_value("anomaly_alerts_suppressed_total", {"model": MODEL}) == 1
    active = {"mode": "suppress_alerts"}
    assert registry.get_sample_value("anomaly_maintenance_windows_active", active) == 1
    metrics = (await client.get("/metrics")).text
    assert 'anomaly_maintenance_windows_active{mode="suppress_alerts"} 1.0' in metrics

    queue = (await client.get("/v1/feedback/review-queue", headers=OPERATOR)).json()
    assert {a["stream_id"] for a in queue["alerts"]} == {"line-b.pump"}
    status = await client.get("/v1/streams/line-a.pump", headers=SCORER)
    assert status.json()["alert_state"] == "suppressed"

    await client.post(f"/v1/maintenance-windows/{window['id']}/end", json={}, headers=ADMIN)
    assert registry.get_sample_value("anomaly_maintenance_windows_active", active) == 0
    after = await score(client, "line-a.pump", FAULT[:1])
    assert after["results"][0]["alert_state"] == "alert"  # the fault outlasted the window


async def test_a_window_of_another_model_or_stream_changes_nothing(client: Any) -> None:
    await open_window(client, stream_id="pump-9", modes=["suppress_alerts"])
    body = await score(client, "pump-1", FAULT)
    assert body["alerts_raised"] == 1
    assert "suppressed_by_window" not in body and "suppressed_by_window" not in body["results"][0]


async def test_a_scheduled_window_applies_from_its_start(client: Any) -> None:
    start = datetime.now(UTC) + timedelta(hours=1)
    window = await open_window(client, starts_at=start.isoformat(), modes=["suppress_alerts"])
    assert window["status"] == "scheduled"
    assert (await score(client, "pump-1", FAULT))["alerts_raised"] == 1


async def test_excluded_readings_never_reach_recalibration_drift_or_the_audit_sample(
    make_client: Any,
) -> None:
    client = await make_client(
        api_keys=API_KEYS, review_audit_size=500, recalibration_min_samples=2
    )
    rng = np.random.default_rng(7)
    window = await open_window(client, stream_id="pump-1", modes=["exclude_from_learning"])
    inside = await score(client, "pump-1", readings(rng, 40, noise=0.5))
    outside = await score(client, "pump-2", readings(rng, 30, noise=0.5))
    assert {r["excluded_from_learning_by_window"] for r in inside["results"]} == {window["id"]}
    registry = client.state.registry
    assert (
        registry.get_sample_value("anomaly_readings_excluded_from_learning_total", {"model": MODEL})
        == 40
    )

    queue = (await client.get("/v1/feedback/review-queue", headers=OPERATOR)).json()
    assert queue["audit_sample"] and {r["stream_id"] for r in queue["audit_sample"]} == {"pump-2"}

    for body in (inside, outside):
        ids = [r["reading_id"] for r in body["results"]]
        response = await client.post(
            "/v1/feedback",
            json={"label": "normal", "reading_ids": ids, "stream_id": body["stream_id"]},
            headers=OPERATOR,
        )
        assert response.status_code == 201, response.text
    stored = client.state.store.list_labels(LabelFilter(stream_id="pump-1"), limit=100)
    assert {label.excluded_from_learning for label in stored} == {
        f"maintenance window {window['id']}"
    }
    assert (
        client.state.store.list_labels(LabelFilter(stream_id="pump-2"), limit=1)[
            0
        ].excluded_from_learning
        is None
    )

    run = await client.post(f"/v1/admin/thresholds/{MODEL}/recalibrate", headers=ADMIN)
    assert run.status_code == 200, run.text
    assert run.json()["n_samples"] == 30
    drift = (await client.get(f"/v1/drift/{MODEL}", headers=ADMIN)).json()
    assert drift["n_recent"] == 30


async def test_learning_freeze_keeps_alert_readings_out_unless_labelled_one_by_one(
    client: Any,
) -> None:
    stamps = [1_700_000_000.0 + i for i in range(8)]
    values = np.vstack([np.zeros((2, 4)), FAULT])
    response = await client.post(
        "/v1/score",
        json={
            "stream_id": "pump-1",
            "readings": [
                {"values": v, "timestamp": t} for v, t in zip(values.tolist(), stamps, strict=True)
            ],
        },
        headers=SCORER,
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    in_alert = [r["reading_id"] for r in results if r["alert"]]
    assert 1 < len(in_alert) < len(results)
    whole = await client.post(
        "/v1/feedback",
        json={
            "label": "normal",
            "time_range": {
                "stream_id": "pump-1",
                "start": datetime.fromtimestamp(stamps[0], UTC).isoformat(),
                "end": datetime.fromtimestamp(stamps[-1], UTC).isoformat(),
            },
        },
        headers=OPERATOR,
    )
    assert whole.status_code == 201, whole.text
    frozen = {
        label["reading_id"]
        for label in whole.json()["labels"]
        if label["excluded_from_learning"] is not None
    }
    assert frozen == set(in_alert)
    store = client.state.store
    model = client.state.models.get(MODEL)
    learned = len(results) - len(in_alert)
    assert len(store.normal_sample(MODEL, model.version, since=0, limit=100).errors) == learned

    one = await client.post(
        "/v1/feedback",
        json={"label": "normal", "reading_ids": in_alert[:1], "stream_id": "pump-1"},
        headers=OPERATOR,
    )
    assert one.status_code == 201 and one.json()["labels"][0]["excluded_from_learning"] is None
    assert len(store.normal_sample(MODEL, model.version, since=0, limit=100).errors) == learned + 1


async def test_windows_survive_a_restart(make_client: Any) -> None:
    first = await make_client(api_keys=API_KEYS)
    window = await open_window(first, stream_id="pump-1", modes=["suppress_alerts"])
    second = await make_client(api_keys=API_KEYS)
    body = await score(second, "pump-1", FAULT)
    assert body["alerts_raised"] == 0
    assert body["results"][-1]["suppressed_by_window"] == window["id"]
