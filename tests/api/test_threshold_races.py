"""A model reload racing a recalibration run: the new model must keep its own threshold."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from calibration_support import ADMIN, API_KEYS, OPERATOR
from conftest import build_test_artifact

MODEL = "test-plant"


async def test_reload_during_a_recalibration_keeps_the_new_models_threshold(
    make_client: Any, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client(
        api_keys=API_KEYS,
        recalibration_interval_s=3600.0,
        recalibration_label_trigger=0,
        recalibration_min_samples=50,
        recalibration_max_change=0.2,
    )
    # 100 confirmed normals with errors 1.05..1.15 against threshold 1.0: a +15% candidate.
    side = np.sqrt(np.linspace(1.05, 1.15, 100))
    values = np.repeat(side[:, None], 4, axis=1).tolist()
    labelled = await client.post(
        "/v1/feedback", json={"label": "normal", "readings": {"values": values}}, headers=OPERATOR
    )
    assert labelled.status_code == 201, labelled.text

    store = client.state.store
    sampling, release = threading.Event(), threading.Event()
    original = store.normal_sample

    def paused_sample(*args: Any, **kwargs: Any) -> Any:
        sampling.set()
        assert release.wait(10)
        return original(*args, **kwargs)

    monkeypatch.setattr(store, "normal_sample", paused_sample)
    run = asyncio.create_task(
        client.post(f"/v1/admin/thresholds/{MODEL}/recalibrate", headers=ADMIN)
    )
    assert await asyncio.to_thread(sampling.wait, 10)  # the run holds the v1 model now
    build_test_artifact(models_dir, version="2", threshold=5.0)
    reload = asyncio.create_task(client.post(f"/v1/admin/models/{MODEL}/reload", headers=ADMIN))
    await asyncio.sleep(0.05)  # lets an unguarded reload finish before the run publishes
    release.set()
    run_reply, reload_reply = await run, await reload
    assert run_reply.status_code == 200 and reload_reply.status_code == 200, reload_reply.text
    assert run_reply.json()["outcome"] == "applied"  # recorded for model version 1

    served = (await client.get(f"/v1/models/{MODEL}")).json()
    assert served["version"] == "2"
    assert served["threshold"]["current"] == 5.0, served["threshold"]
    history = (await client.get(f"/v1/admin/thresholds/{MODEL}", headers=ADMIN)).json()
    newest = history["versions"][-1]
    assert (newest["model_version"], newest["value"]) == ("2", 5.0)
    assert served["threshold"]["version"] == newest["version"]
