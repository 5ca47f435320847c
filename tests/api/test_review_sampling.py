"""Confirming false alarms from the review queue is not evidence of a shift.

Operators review every alert but only an audit sample of the rest, so without correction
the confirmed normals are mostly the high tail: the drift test fires and the 99th
percentile jumps although nothing changed. Scenario: readings drawn from the very law the
model was fitted to, its threshold at that law's 99th percentile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from calibration_support import ADMIN, API_KEYS, CHI2_4_Q99_OVER_4, OPERATOR, readings

MODEL = "test-plant"
BASE = CHI2_4_Q99_OVER_4


@pytest.fixture
def matched_models(tmp_path: Path, write_test_artifact: Any) -> Path:
    folder = tmp_path / "matched-models"
    write_test_artifact(folder, threshold=BASE)
    return folder


async def test_confirmed_false_alarms_and_an_audit_sample_move_nothing(
    make_client: Any, matched_models: Path
) -> None:
    client = await make_client(
        models_dir=matched_models,
        api_keys=API_KEYS,
        recalibration_interval_s=3600.0,
        recalibration_label_trigger=0,
        recalibration_min_samples=50,
        review_audit_size=60,
        drift_min_samples=50,
    )
    # The audit sample is drawn at random; at the configured alpha a few samples in a hundred
    # show one sensor "drifted" by chance, so the sample is fixed as the readings are.
    client.state.desk.rng = np.random.default_rng(0)
    values = readings(np.random.default_rng(7), 3000)  # no shift at all
    reply = await client.post(
        "/v1/score", json={"stream_id": "line-1", "readings": values.tolist()}
    )
    assert reply.status_code == 200
    results = reply.json()["results"]
    false_alarms = [r["reading_id"] for r in results if r["anomaly"] or r["alert"]]
    queue = (await client.get("/v1/feedback/review-queue", headers=OPERATOR)).json()
    audit = [r["reading_id"] for r in queue["audit_sample"]]
    assert len(false_alarms) >= 20 and len(audit) == 60
    for ids in (false_alarms, audit):
        confirmed = await client.post(
            "/v1/feedback", json={"label": "normal", "reading_ids": ids}, headers=OPERATOR
        )
        assert confirmed.status_code == 201, confirmed.text

    run = (await client.post(f"/v1/admin/thresholds/{MODEL}/recalibrate", headers=ADMIN)).json()
    assert run["n_samples"] == len(false_alarms) + 60
    assert run["outcome"] in {"applied", "unchanged"}, run
    assert abs(run["candidate"] / BASE - 1) < 0.1, run
    assert run["statistics"]["flagged_share_from"] == "retained scored readings"
    drift = (await client.get(f"/v1/drift/{MODEL}", headers=OPERATOR)).json()
    assert drift["n_recent"] == 60  # the audit sample only: reviewed alerts are left out
    assert drift["recommendation"] == "none", drift
