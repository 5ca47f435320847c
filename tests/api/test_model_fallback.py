"""Start-up with a bad newest version serves the newest good one, as a reload keeps the last
good model, and says so; several models with no default are a readiness reason."""

from __future__ import annotations

from pathlib import Path

from calibration_support import ADMIN, API_KEYS
from conftest import TEST_MODEL, ClientFactory, build_test_artifact

from service.settings import Settings


def models_with_a_bad_newest_version(folder: Path) -> Path:
    build_test_artifact(folder, version="1")
    bad = build_test_artifact(folder, version="2")
    (bad / "manifest.json").write_text("{ not json")
    return folder


async def test_start_up_serves_the_newest_good_version_and_names_the_refused_one(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    client = await make_client(models_dir=models_with_a_bad_newest_version(tmp_path / "m"))
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    refused = ready.json()["refused_artifacts"]
    assert list(refused) == [f"{TEST_MODEL}/2"] and "manifest" in refused[f"{TEST_MODEL}/2"]
    listing = (await client.get("/v1/models")).json()
    assert [m["version"] for m in listing["models"]] == ["1"]
    assert list(listing["refused"]) == [f"{TEST_MODEL}/2"]
    reply = await client.post("/v1/score", json={"stream_id": "s", "reading": [0, 0, 0, 0]})
    assert reply.status_code == 200 and reply.json()["model_version"] == "1"
    metrics = (await client.get("/metrics")).text
    assert f'anomaly_model_versions_refused{{model="{TEST_MODEL}"}} 1.0' in metrics


async def test_a_pinned_bad_version_is_not_replaced_by_another(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    """Pinning says which version to serve: no fallback, the service is not ready."""
    folder = models_with_a_bad_newest_version(tmp_path / "m")
    client = await make_client(models_dir=folder, pinned_versions={TEST_MODEL: "2"})
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert "manifest" in ready.json()["checks"]["models"]


async def test_several_models_without_a_default_are_not_ready(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    folder = tmp_path / "m"
    build_test_artifact(folder, name="plant-a")
    build_test_artifact(folder, name="plant-b")
    client = await make_client(models_dir=folder)
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    reason = ready.json()["checks"]["models"]
    assert "several models are loaded (plant-a, plant-b)" in reason
    variable = f"{Settings.model_config['env_prefix']}DEFAULT_MODEL"
    assert "name the model in the request (see /docs for each form" in reason
    assert "`readings.model` or `time_range.model` in a label" in reason
    assert f"or set {variable}" in reason
    named = await client.post(
        "/v1/score", json={"model": "plant-a", "stream_id": "s", "reading": [0, 0, 0, 0]}
    )
    assert named.status_code == 200
    chosen = await make_client(models_dir=folder, default_model="plant-b")
    assert (await chosen.get("/readyz")).status_code == 200


async def test_reload_names_the_refused_version_and_no_server_path(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    """An operator asking for the newest version gets it or a refusal (reload all is all or
    nothing; reloading another model by name is not blocked); no reason names a server path."""
    folder = models_with_a_bad_newest_version(tmp_path / "m")
    build_test_artifact(folder, name="other")
    client = await make_client(models_dir=folder, default_model=TEST_MODEL, api_keys=API_KEYS)
    refused = await client.post("/v1/admin/models/reload", headers=ADMIN)
    assert refused.status_code == 409
    assert f"model artifact {TEST_MODEL}/2: " in refused.json()["detail"]
    other = await client.post("/v1/admin/models/other/reload", headers=ADMIN)
    assert other.status_code == 200, other.text
    ready = (await client.get("/readyz")).json()
    assert str(tmp_path) not in str(ready)
    assert ready["refused_artifacts"][f"{TEST_MODEL}/2"].startswith(
        f"model artifact {TEST_MODEL}/2: "
    )


async def test_a_long_smoothing_window_setting_still_scores(make_client: ClientFactory) -> None:
    client = await make_client(smoothing_method="mean", smoothing_window=5000)
    reply = await client.post("/v1/score", json={"stream_id": "s", "reading": [0, 0, 0, 0]})
    assert reply.status_code == 200
