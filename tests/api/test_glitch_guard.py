"""A model with the glitch guard: a one-reading glitch is scored at its own reading only,
whatever batches the stream's readings come in."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from calibration_support import ADMIN, API_KEYS, OPERATOR
from conftest import TEST_MODEL, ClientFactory, build_test_artifact

from models.export import export_artifact
from models.scores import per_sensor_errors, scores_from_errors
from models.synthetic import generate_plant
from models.train import train
from models.train_config import TrainConfig
from service.scoring.artifact import load_artifact

# The test model expects the latest reading to be the mean of the window's earlier ones;
# a score is the mean over 4 sensors of the squared difference (threshold 1).
QUIET = [0.0, 0.0, 0.0, 0.0]
GLITCH = [10.0, 0.0, 0.0, 0.0]  # scores 25 where its window's earlier readings are quiet
RUN = [QUIET, QUIET, QUIET, GLITCH, QUIET, QUIET, QUIET]
LIMITS = [2.0, 2.0, 2.0, 2.0]


async def score(client: Any, readings: list[list[float]], stream: str) -> list[dict[str, Any]]:
    response = await client.post(
        "/v1/score", json={"model": TEST_MODEL, "stream_id": stream, "readings": readings}
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def scores_in_batches(client: Any, sizes: list[int], stream: str) -> list[float | None]:
    out: list[float | None] = []
    start = 0
    for size in sizes:
        for result in await score(client, RUN[start : start + size], stream):
            out.append(result.get("score"))
        start += size
    assert start == len(RUN)
    return out


def models_with(tmp_path: Path, **fields: Any) -> Path:
    folder = tmp_path / "models"
    build_test_artifact(folder, window=3, **fields)
    return folder


async def test_a_glitch_is_scored_at_its_own_reading_only(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    plain = await make_client(models_dir=models_with(tmp_path / "plain"))
    assert await scores_in_batches(plain, [7], "s") == pytest.approx(
        [None, None, 0, 25, 6.25, 6.25, 0]  # the glitch stays in the windows that hold it
    )
    guarded = await make_client(models_dir=models_with(tmp_path / "g", glitch_limits=LIMITS))
    expected = [None, None, 0, 25, 0, 0, 0]
    for i, sizes in enumerate(([7], [1] * 7, [2, 3, 2], [4, 1, 2], [3, 4])):
        assert await scores_in_batches(guarded, sizes, f"s{i}") == pytest.approx(expected), sizes


async def test_each_glitch_is_counted_once_whatever_the_batches(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    """``anomaly_glitched_readings_total`` counts a reading the guard put a value of back
    once, by the request that brings its successor; a step and a model without the guard
    count none."""
    guarded = await make_client(models_dir=models_with(tmp_path / "g", glitch_limits=LIMITS))
    registry = guarded.state.registry
    count = {"model": TEST_MODEL}
    assert registry.get_sample_value("anomaly_glitched_readings_total", count) is None
    for i, sizes in enumerate(([7], [1] * 7, [2, 3, 2], [4, 1, 2], [3, 4])):
        await scores_in_batches(guarded, sizes, f"s{i}")
        assert registry.get_sample_value("anomaly_glitched_readings_total", count) == i + 1
    await score(guarded, RUN[:4], "judged-later")  # the glitch is the last reading: not judged
    assert registry.get_sample_value("anomaly_glitched_readings_total", count) == 5
    await score(guarded, [QUIET], "judged-later")
    assert registry.get_sample_value("anomaly_glitched_readings_total", count) == 6
    await score(guarded, [QUIET, QUIET, QUIET, GLITCH, GLITCH, GLITCH], "step")
    assert registry.get_sample_value("anomaly_glitched_readings_total", count) == 6
    plain = await make_client(models_dir=models_with(tmp_path / "plain"))
    await scores_in_batches(plain, [7], "s")
    assert plain.state.registry.get_sample_value("anomaly_glitched_readings_total", count) == 0


async def test_a_step_is_no_glitch(tmp_path: Path, make_client: ClientFactory) -> None:
    step = [QUIET, QUIET, QUIET, GLITCH, GLITCH, GLITCH]
    scores = {}
    for name, fields in (("plain", {}), ("guarded", {"glitch_limits": LIMITS})):
        client = await make_client(models_dir=models_with(tmp_path / name, **fields))
        scores[name] = [r.get("score") for r in await score(client, step, "s")]
    assert scores["guarded"] == scores["plain"]


async def test_feedback_carrying_readings_is_scored_as_the_stream_was(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    """Readings sent with a label are scored on the spot as a stream scores them, the glitch
    put back in the windows after its own; the model and the stream say the guard is on."""
    client = await make_client(
        api_keys=API_KEYS, models_dir=models_with(tmp_path, glitch_limits=LIMITS)
    )
    response = await client.post(
        "/v1/feedback", json={"label": "normal", "readings": {"values": RUN}}, headers=OPERATOR
    )
    assert response.status_code == 201, response.text
    assert [lab["error"] for lab in response.json()["labels"]] == pytest.approx([0, 25, 0, 0, 0])

    await score(client, RUN, "s")
    model = (await client.get(f"/v1/models/{TEST_MODEL}")).json()
    assert model["glitch_guard"] is True
    stream = (await client.get("/v1/streams/s", params={"model": TEST_MODEL})).json()
    assert stream["window"] == 3 and stream["readings_buffered"] == 3


async def test_a_model_replaced_in_place_restarts_its_streams(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    """The same name and version rewritten (``train --force``), here with the glitch guard
    turned on: a stream begun under the former artifact must not go on with its window,
    smoothing and guard (a glitch would page as it did before the guard)."""
    folder = models_with(tmp_path)
    client = await make_client(api_keys=API_KEYS, models_dir=folder)
    await score(client, RUN[:3], "open")
    build_test_artifact(folder, window=3, glitch_limits=LIMITS)
    reloaded = await client.post(f"/v1/admin/models/{TEST_MODEL}/reload", headers=ADMIN)
    assert reloaded.status_code == 200, reloaded.text
    assert (await client.get(f"/v1/models/{TEST_MODEL}")).json()["glitch_guard"] is True
    after = [r.get("score") for r in await score(client, RUN, "open")]
    assert after == [r.get("score") for r in await score(client, RUN, "fresh")]
    assert after == pytest.approx([None, None, 0, 25, 0, 0, 0])
    # Reloading the same artifact leaves the streams as they are.
    again = await client.post(f"/v1/admin/models/{TEST_MODEL}/reload", headers=ADMIN)
    assert again.status_code == 200
    assert (await score(client, [QUIET], "open"))[0]["status"] == "scored"


async def test_a_stream_state_of_the_former_artifact_is_not_carried_into_the_new_one(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    """As on a replica sharing stream state that did not make the reload itself (or one
    restarted with the rewritten artifact): nothing dropped the stream, and its state, of
    the same version, still does not go on under the new artifact."""
    folder = models_with(tmp_path)
    client = await make_client(models_dir=folder)
    await score(client, RUN[:3], "open")
    build_test_artifact(folder, window=3, glitch_limits=LIMITS)
    state = client.state
    await state.keeper.swap_models(lambda: state.models.reload(TEST_MODEL))  # no stream dropped
    after = [r.get("score") for r in await score(client, RUN, "open")]
    assert after == pytest.approx([None, None, 0, 25, 0, 0, 0])


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"glitch_limits": [1.0, 1.0]}, "glitch limits must be 4"),
        ({"glitch_limits": [1.0, 1.0, 0.0, 1.0]}, "glitch limits must be 4 positive"),
    ],
)
def test_guard_fields_that_cannot_be_right_are_refused(
    tmp_path: Path, fields: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        build_test_artifact(tmp_path / "models", window=3, **fields)


@pytest.mark.parametrize("window", [2, 3])
@pytest.mark.parametrize("smoothing", ["ewma:0.3", "mean:3"])
async def test_a_trained_model_serves_the_offline_scores_in_any_batches(
    tmp_path: Path, make_client: ClientFactory, window: int, smoothing: str
) -> None:
    """A guarded model trained and exported by `train`: the service's smoothed scores equal
    those `models evaluate` computes, sent one by one, in random batches or at once."""
    torch.set_num_threads(1)
    data = generate_plant(1500, seed=5, n_sensors=4)
    config = TrainConfig(family="dpca", window=window, smoothing=smoothing, glitch_guard=True)
    result = train(data.values, data.sensors, config)
    folder = tmp_path / "models" / "m" / "1"
    export_artifact(
        result, folder, name="m", version="1", training_data_sha256="0" * 64,
        include_export=False,
    )  # fmt: skip
    artifact = load_artifact(folder)
    values = generate_plant(80, seed=6, n_sensors=4).values
    values[[3, 10, 11, 40, 41, 42, 60, 79], 1] += 30 * result.scaler_scale[1]  # glitches, runs
    values[20, 2] -= 30 * result.scaler_scale[2]
    errors = per_sensor_errors(artifact, values)
    offline = scores_from_errors(artifact, errors) / artifact.manifest.threshold.value
    assert not np.allclose(per_sensor_errors(replace(result, glitch_limits=None), values), errors)
    client = await make_client(models_dir=tmp_path / "models")
    rng = np.random.default_rng(0)
    for trial, mode in enumerate(["ones", "random", "all"]):
        got: list[float] = []
        start = 0
        while start < len(values):
            size = (
                1 if mode == "ones" else len(values) if mode == "all" else int(rng.integers(1, 7))
            )
            batch = values[start : start + size].tolist()
            response = await client.post(
                "/v1/score", json={"model": "m", "stream_id": f"s{trial}", "readings": batch}
            )
            assert response.status_code == 200, response.text
            got += [r["smoothed_score"] for r in response.json()["results"] if "score" in r]
            start += size
        np.testing.assert_allclose(got, offline, rtol=2e-5, atol=1e-6, err_msg=mode)
