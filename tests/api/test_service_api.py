"""Health, readiness on bad artifacts, model listing, reloads, metrics and OpenAPI."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import AppClient, ArtifactWriter, ClientFactory
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from service.__main__ import main as service_main
from service.app import StartupError, create_app
from service.calibration.store import StoreUnreachable
from service.settings import Settings
from service.state import ReadinessCheck
from service.store_probe import EMBEDDED_STORE_CHECK_S, STORE_CHECK_S

ADMIN_KEY = "admin-key-for-tests-0123456789abcdef"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
KEYS = [{"name": "root", "scopes": ["admin"], "key": ADMIN_KEY}]


def tamper(folder: Path, name: str = "model.pt") -> None:
    with (folder / name).open("ab") as handle:
        handle.write(b"\0tampered")


async def test_health_and_ready(client: AppClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "alive"}
    registry = client.state.registry
    labels = {"check": "models", "blocking": "true"}
    assert registry.get_sample_value("anomaly_readiness_failing", labels) is None  # unprobed
    ready = await client.get("/readyz")
    assert registry.get_sample_value("anomaly_readiness_failing", labels) == 0.0
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["checks"]["models"] == "ok"
    assert ready.json()["checks"]["thresholds"] == "ok"
    # The embedded store: one process, always the recalibration leader.
    assert ready.json()["details"]["store"] == "sqlite"
    assert ready.json()["details"]["recalibration_leader"].startswith("this process")
    assert client.state.registry.get_sample_value("anomaly_recalibration_leader") == 1.0


async def test_a_broken_embedded_store_makes_the_process_not_ready(client: AppClient) -> None:
    """The embedded store is the process's own file: unlike a shared store, its failure
    takes the process out of service."""
    client.state.store.close()
    client.state.store.ping = _unreachable  # type: ignore[method-assign]
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert "unreachable" in ready.json()["checks"]["store"]
    registry = client.state.registry
    failing = {"check": "store", "blocking": "true"}  # what Prometheus sees of it
    assert registry.get_sample_value("anomaly_readiness_failing", failing) == 1.0
    probed = registry.get_sample_value("anomaly_readiness_probed_timestamp_seconds")
    assert probed is not None and probed > 0
    client.state.store.ping = lambda: None  # type: ignore[method-assign]
    assert (await client.get("/readyz")).status_code == 200  # mended: the next probe says so
    assert registry.get_sample_value("anomaly_readiness_failing", failing) == 0.0


async def test_a_busy_embedded_store_keeps_the_process_ready(client: AppClient) -> None:
    """The shared store's check is bounded at 2 s (a cut-off server must not time the probe
    out); the embedded store's one connection busy with another call past that is no
    failure, which would take the process out of service; only one stuck past 3 s is."""
    assert not client.state.store.shared

    def busy() -> None:
        time.sleep(STORE_CHECK_S + 0.5)

    client.state.store.ping = busy  # type: ignore[method-assign]
    ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["store"] == "ok"

    def stuck() -> None:  # still said, within the probes' 4 s
        time.sleep(EMBEDDED_STORE_CHECK_S + 0.5)

    client.state.store.ping = stuck  # type: ignore[method-assign]
    ready = await client.get("/readyz")
    assert ready.status_code == 503, ready.text
    said = f"feedback store unreachable: no answer within {EMBEDDED_STORE_CHECK_S:g} s"
    assert ready.json()["checks"]["store"] == said


def _unreachable() -> None:
    raise StoreUnreachable("sqlite:///x", "disk I/O error")


async def test_readiness_names_no_server_and_the_log_says_it_once(
    client: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    """/readyz answers anyone who can reach the port: a driver's message naming the store's
    host, address and user goes to the log, once per outage, not into the answer."""
    where = "postgresql://anomaly@db.plant.internal:5432/anomaly"
    said = 'connection to server at "db.plant.internal" (10.0.4.7), port 5432 failed'

    def down() -> None:
        raise StoreUnreachable(where, said)

    client.state.store.ping = down  # type: ignore[method-assign]
    with caplog.at_level(logging.INFO, logger="service.app"):
        for _ in range(3):
            ready = await client.get("/readyz")
            assert ready.status_code == 503
            for secret in ("db.plant.internal", "10.0.4.7", "anomaly@"):
                assert secret not in ready.text
            store = ready.json()["checks"]["store"]
            assert (
                store
                == "feedback store unreachable: StoreUnreachable (the service log has the reason)"
            )
            assert store in ready.json()["detail"]
        client.state.store.ping = lambda: None  # type: ignore[method-assign]
        assert (await client.get("/readyz")).status_code == 200
    logged = [r.getMessage() for r in caplog.records if r.name == "service.app"]
    assert len([line for line in logged if "10.0.4.7" in line]) == 1, logged
    assert logged[-1] == "readiness: feedback store: answers again"


async def test_a_readiness_check_that_raises_names_no_server(
    client: AppClient, caplog: pytest.LogCaptureFixture
) -> None:
    """A probe that raises (rather than returning its reason) is not ready, said by kind;
    its message is logged once, not at every probe."""

    async def raises() -> str | None:
        raise OSError("connect to 10.0.4.7:6379 failed")

    client.state.readiness.append(ReadinessCheck("extra", raises))
    with caplog.at_level(logging.INFO, logger="service.state"):
        for _ in range(3):
            ready = await client.get("/readyz")
            assert ready.status_code == 503 and "10.0.4.7" not in ready.text
            assert ready.json()["checks"]["extra"] == (
                "check failed: OSError (the service log has the reason)"
            )
    logged = [r.getMessage() for r in caplog.records if r.name == "service.state"]
    assert logged == ["readiness check extra: OSError: connect to 10.0.4.7:6379 failed"]


async def test_tampered_artifact_is_not_ready(
    tmp_path: Path, write_test_artifact: ArtifactWriter, make_client: ClientFactory
) -> None:
    models = tmp_path / "bad"
    tamper(write_test_artifact(models))
    client = await make_client(models_dir=models)
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    body = ready.json()
    assert "model.pt checksum mismatch" in body["detail"]
    assert "checksum mismatch" in body["checks"]["models"]
    refused = await client.post("/v1/score", json={"stream_id": "s", "reading": [0, 0, 0, 0]})
    assert refused.status_code == 503 and "checksum mismatch" in refused.json()["detail"]
    listing = (await client.get("/v1/models")).json()
    assert listing["models"] == [] and "checksum mismatch" in listing["problems"]["test-plant"]


async def test_bad_manifest_and_missing_dir(
    tmp_path: Path, write_test_artifact: ArtifactWriter, make_client: ClientFactory
) -> None:
    models = tmp_path / "schema"
    folder = write_test_artifact(models)
    manifest = folder / "manifest.json"
    manifest.write_text(manifest.read_text().replace('"window": 1', '"window": 0'))
    client = await make_client(models_dir=models)
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and "does not match the schema" in ready.json()["detail"]
    empty = await make_client(models_dir=tmp_path / "nowhere")
    ready = await empty.get("/readyz")
    assert ready.status_code == 503 and "does not exist" in ready.json()["detail"]


@pytest.mark.parametrize(
    ("manifest", "reason"),
    [
        ('{"format_version": 1, "window": ' + "9" * 5000 + "}", "not valid JSON"),
        ("[" * 100_000, "nested too deeply"),
    ],
    ids=["integer-of-5000-digits", "nested-100000-deep"],
)
async def test_manifests_json_cannot_read_leave_the_service_running(
    tmp_path: Path,
    write_test_artifact: ArtifactWriter,
    make_client: ClientFactory,
    manifest: str,
    reason: str,
) -> None:
    """The standard parser raises ValueError and RecursionError here, not JSONDecodeError:
    they crashed start-up, and a reload answered 500."""
    models = tmp_path / "odd"
    (write_test_artifact(models) / "manifest.json").write_text(manifest)
    client = await make_client(models_dir=models, api_keys=KEYS)
    ready = await client.get("/readyz")
    assert ready.status_code == 503 and reason in ready.json()["detail"]
    refused = await client.post("/v1/admin/models/reload", headers=ADMIN)
    assert refused.status_code == 409 and reason in refused.json()["detail"]


async def test_an_unforeseen_failure_refuses_that_artifact_alone(
    tmp_path: Path,
    write_test_artifact: ArtifactWriter,
    make_client: ClientFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    models = tmp_path / "unforeseen"
    write_test_artifact(models)
    client = await make_client(models_dir=models, api_keys=KEYS)
    reading = {"stream_id": "s", "reading": [2, 0, 0, 0]}
    assert (await client.post("/v1/score", json=reading)).status_code == 200

    def broken(folder: Path) -> None:
        raise KeyError("a check nobody foresaw")

    monkeypatch.setattr("service.scoring.registry.load_artifact", broken)
    refused = await client.post("/v1/admin/models/reload", headers=ADMIN)
    assert refused.status_code == 409
    assert "could not be loaded (KeyError" in refused.json()["detail"]
    assert (await client.post("/v1/score", json=reading)).status_code == 200


def test_fail_fast_refuses_to_start(tmp_path: Path, write_test_artifact: ArtifactWriter) -> None:
    models = tmp_path / "bad"
    tamper(write_test_artifact(models))
    settings = Settings(
        models_dir=models, fail_fast_on_bad_artifact=True, store_path=tmp_path / "s.sqlite3"
    )
    app = create_app(settings, registry=CollectorRegistry())
    import asyncio

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pass

    with pytest.raises(StartupError, match="checksum mismatch"):
        asyncio.run(start())


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("ANOMALY_ENV", "production", "production mode needs API keys"),
        ("ANOMALY_PORT", "eighty", "ANOMALY_PORT: Input should be a valid integer"),
        ("ANOMALY_STORE_URL", "mysql://db/anomaly", "store URL scheme 'mysql' is not supported"),
        ("ANOMALY_API_KEYS_FILE", "/nonexistent/keys.json", "API key file /nonexistent/keys.json"),
        ("ANOMALY_STORE_ULR", "postgresql://db/anomaly", "did you mean ANOMALY_STORE_URL?"),
    ],
)
def test_a_setting_that_cannot_start_is_said_in_one_message_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    reason: str,
) -> None:
    for name in ("ANOMALY_API_KEYS", "ANOMALY_API_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(variable, value)

    def started(*args: object, **kwargs: object) -> None:  # a refusal missed: fail, not serve
        raise AssertionError("the service started")

    monkeypatch.setattr("service.__main__.uvicorn.run", started)
    if variable == "ANOMALY_STORE_ULR":  # a typo is refused in production, with keys given
        monkeypatch.setenv("ANOMALY_ENV", "production")
        keys = [{"name": "ops", "scopes": ["admin"], "key": "k" * 24 + "3f9Q-x7Lm_pR2vT8"}]
        monkeypatch.setenv("ANOMALY_API_KEYS", json.dumps(keys))
    with pytest.raises(SystemExit) as exited:
        service_main(["--log-level", "warning"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m service: cannot start: ") and reason in err
    assert err.count("\n") == 1 and "errors.pydantic.dev" not in err  # one line, no link


async def test_models_endpoints(client: AppClient) -> None:
    listing = (await client.get("/v1/models")).json()
    assert listing["default_model"] == "test-plant" and listing["problems"] == {}
    (summary,) = listing["models"]
    assert summary["name"] == "test-plant" and summary["default"] is True
    assert summary["threshold"] == {"current": 1.0, "baseline": 1.0, "version": 1}
    detail = (await client.get("/v1/models/test-plant")).json()
    assert detail["sensors"] == ["s0", "s1", "s2", "s3"] and detail["window"] == 1
    assert detail["calibration"]["quantile"] == 0.99
    assert detail["calibration"]["n_calibration"] == 200
    assert detail["calibration"]["false_alarm_rate_ci"] == [0.004, 0.02]
    assert set(detail["files"]) == {"model.pt", "reference_errors.npy"}
    missing = await client.get("/v1/models/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def test_highest_version_served_unless_pinned(
    tmp_path: Path, write_test_artifact: ArtifactWriter, make_client: ClientFactory
) -> None:
    models = tmp_path / "versions"
    for version, threshold in (("2", 2.0), ("10", 10.0), ("9", 9.0)):
        write_test_artifact(models, version=version, threshold=threshold)
    client = await make_client(models_dir=models)
    assert (await client.get("/v1/models/test-plant")).json()["version"] == "10"
    pinned = await make_client(models_dir=models, pinned_versions={"test-plant": "2"})
    detail = (await pinned.get("/v1/models/test-plant")).json()
    assert detail["version"] == "2" and detail["threshold"]["current"] == 2.0


async def test_several_models_need_a_name_or_default(
    tmp_path: Path, write_test_artifact: ArtifactWriter, make_client: ClientFactory
) -> None:
    models = tmp_path / "two"
    write_test_artifact(models, "alpha")
    write_test_artifact(models, "beta", n_sensors=2)
    client = await make_client(models_dir=models)
    unnamed = await client.post("/v1/score", json={"stream_id": "s", "reading": [0, 0]})
    assert unnamed.status_code == 404 and "no default" in unnamed.json()["detail"]
    named = await client.post(
        "/v1/score", json={"stream_id": "s", "model": "beta", "reading": [0, 0]}
    )
    assert named.status_code == 200 and named.json()["model"] == "beta"
    with_default = await make_client(models_dir=models, default_model="beta")
    reply = await with_default.post("/v1/score", json={"stream_id": "s", "reading": [1, 1]})
    assert reply.status_code == 200 and reply.json()["model"] == "beta"


async def test_reload_refuses_bad_artifact_and_keeps_last_good(
    tmp_path: Path, write_test_artifact: ArtifactWriter, make_client: ClientFactory
) -> None:
    models = tmp_path / "reload"
    write_test_artifact(models)
    client = await make_client(models_dir=models, api_keys=KEYS)
    reading = {"stream_id": "s", "reading": [2, 0, 0, 0]}
    assert (await client.post("/v1/score", json=reading)).json()["result"]["score"] == 1.0

    new = write_test_artifact(models, version="2", threshold=4.0)
    tamper(new)
    refused = await client.post("/v1/admin/models/reload", headers=ADMIN)
    assert refused.status_code == 409
    assert refused.headers["content-type"] == "application/problem+json"
    assert "checksum mismatch" in refused.json()["detail"]
    assert "still serving" in refused.json()["detail"]
    assert (await client.get("/v1/models/test-plant")).json()["version"] == "1"
    assert (await client.post("/v1/score", json=reading)).json()["result"]["score"] == 1.0
    assert (await client.get("/readyz")).status_code == 200

    shutil.rmtree(new)
    write_test_artifact(models, version="2", threshold=4.0)
    done = await client.post("/v1/admin/models/test-plant/reload", headers=ADMIN)
    assert done.status_code == 200, done.text
    (reloaded,) = done.json()["reloaded"]
    assert reloaded["version"] == "2"
    assert reloaded["threshold"] == {"current": 4.0, "baseline": 4.0, "version": 2}
    result = (await client.post("/v1/score", json=reading)).json()["result"]
    assert result["score"] == 0.25 and result["model_version"] == "2"
    assert result["threshold_version"] == 2
    unknown = await client.post("/v1/admin/models/nope/reload", headers=ADMIN)
    assert unknown.status_code == 404


async def test_reload_fixes_a_bad_start(
    tmp_path: Path, write_test_artifact: ArtifactWriter, make_client: ClientFactory
) -> None:
    models = tmp_path / "fix"
    folder = write_test_artifact(models)
    tamper(folder)
    client = await make_client(models_dir=models, api_keys=KEYS)
    assert (await client.get("/readyz")).status_code == 503
    shutil.rmtree(folder)
    write_test_artifact(models)
    assert (await client.post("/v1/admin/models/reload", headers=ADMIN)).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


async def test_admin_reload_needs_a_key(client: AppClient) -> None:
    response = await client.post("/v1/admin/models/reload")
    assert response.status_code in (401, 403)
    assert response.headers["content-type"] == "application/problem+json"


async def test_metrics_parse_and_contain_the_series(client: AppClient) -> None:
    for stream in ("a", "b"):
        body = {"stream_id": stream, "readings": [[0.1, 0, 0, 0]] * 20 + [[3, 1, 1, 1]] * 5}
        assert (await client.post("/v1/score", json=body)).status_code == 200
    await client.post("/v1/score", json={"stream_id": "a", "reading": [0, 0]})  # a 422
    await client.get("/healthz")
    response = await client.get("/metrics")
    assert response.status_code == 200
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in families.values()
        for s in f.samples
    }
    model = ("model", "test-plant")

    def value(name: str, *labels: tuple[str, str]) -> float:
        return samples[(name, tuple(sorted(labels)))]

    assert value("anomaly_readings_scored_total", model) == 50
    assert value("anomaly_anomalies_total", model) == 10
    assert value("anomaly_alerts_total", model) == 2
    assert value("anomaly_top_sensor_contributions_total", model, ("sensor", "s0")) == 10
    ok = (("endpoint", "/v1/score"), ("method", "POST"), ("status", "200"))
    assert value("anomaly_http_requests_total", *ok) == 2
    assert value("anomaly_http_requests_total", *ok[:2], ("status", "422")) == 1
    assert not any(
        name == "anomaly_http_requests_total" and ("endpoint", "/healthz") in labels
        for name, labels in samples
    )
    assert value("anomaly_http_request_duration_seconds_count", ("endpoint", "/v1/score")) == 3
    # error histogram buckets sit around the training threshold (1.0)
    assert value("anomaly_reconstruction_error_bucket", model, ("le", "1.0")) == 40
    assert value("anomaly_reconstruction_error_bucket", model, ("le", "0.95")) == 40
    assert value("anomaly_reconstruction_error_bucket", model, ("le", "+Inf")) == 50
    assert value("anomaly_score_count", model) == 50
    assert value("anomaly_reconstruction_error_quantile", model, ("quantile", "0.5")) == (
        pytest.approx(0.0025)
    )
    assert value("anomaly_reconstruction_error_quantile", model, ("quantile", "0.99")) == (
        pytest.approx(3.0)
    )
    assert value("anomaly_threshold", model) == 1.0
    assert value("anomaly_threshold_baseline", model) == 1.0
    assert value("anomaly_threshold_version", model) == 1
    assert value("anomaly_active_streams") == 2
    info = (("model", "test-plant"), ("version", "1"), ("window", "1"), ("sensors", "4"))
    assert value("anomaly_model_info", *info) == 1
    assert "anomaly_stream_evictions" in families


async def test_openapi_documents_the_scoring_api(client: AppClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    score = spec["paths"]["/v1/score"]["post"]
    content = score["requestBody"]["content"]
    assert set(content) == {"application/json", "application/octet-stream", "application/x-npy"}
    assert {"single", "batch", "named"} <= set(content["application/json"]["examples"])
    assert score["responses"]["200"]["content"]["application/json"]["example"]["result"]
    assert "422" in score["responses"] and "413" in score["responses"]
    schemas = spec["components"]["schemas"]
    assert {"ScoreRequest", "ScoreResponse", "BulkScoreResponse", "ReadingIn", "Problem"} <= set(
        schemas
    )
    for path in ("/v1/models", "/v1/models/{name}", "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"]


async def _examples_score(client: AppClient) -> dict[str, Any]:
    spec = (await client.get("/openapi.json")).json()
    body = spec["paths"]["/v1/score"]["post"]["requestBody"]["content"]["application/json"]
    examples: dict[str, Any] = body["examples"]
    for name, example in examples.items():
        reply = await client.post("/v1/score", json=example["value"])
        assert reply.status_code == 200, (name, reply.text)
    return examples


async def test_openapi_examples_score_against_the_served_model(
    tmp_path: Path, write_test_artifact: ArtifactWriter, make_client: ClientFactory
) -> None:
    """ "Try it out" in /docs sends these bodies: they had 4 readings' worth of made-up
    sensors and came back 422 from any real model."""
    models = tmp_path / "docs"
    write_test_artifact(models, n_sensors=7)
    client = await make_client(models_dir=models, api_keys=KEYS)
    examples = await _examples_score(client)
    assert len(examples["single"]["value"]["reading"]) == 7
    assert "model" not in examples["single"]["value"]  # the default model answers
    assert set(examples["named"]["value"]["reading"]["values"]) == {f"s{i}" for i in range(7)}

    write_test_artifact(models, version="2", n_sensors=3)  # a reload changes the examples
    assert (await client.post("/v1/admin/models/reload", headers=ADMIN)).status_code == 200
    assert len((await _examples_score(client))["batch"]["value"]["readings"][0]) == 3


async def test_openapi_examples_name_a_model_when_there_is_no_default(
    tmp_path: Path, write_test_artifact: ArtifactWriter, make_client: ClientFactory
) -> None:
    models = tmp_path / "two"
    write_test_artifact(models, "alpha", n_sensors=3)
    write_test_artifact(models, "beta", n_sensors=2)
    examples = await _examples_score(await make_client(models_dir=models))
    assert examples["single"]["value"]["model"] == "alpha"


@pytest.mark.parametrize("require_score_key", [False, True])
async def test_openapi_declares_refusals_as_problems(
    make_client: ClientFactory, require_score_key: bool
) -> None:
    """Generated clients read these: refusals were declared as application/json (422 in
    FastAPI's own shape), and the 401/403 of keyed operations were missing."""
    client = await make_client(api_keys=KEYS, require_score_key=require_score_key)
    spec = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            for status, response in responses.items():
                if int(status) >= 400:
                    assert response["content"] == {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}
                        }
                    }, (method, path, status)
            scoped = path.startswith(
                ("/v1/admin", "/v1/feedback", "/v1/drift", "/v1/maintenance-windows")
            )
            keyed = (
                scoped
                or path.startswith("/v1/whoami")
                or (
                    require_score_key
                    and path.startswith(("/v1/score", "/v1/models", "/v1/streams"))
                )
            )
            # Every /v1 route checks a key that is presented: a wrong one is a 401 anywhere.
            assert ("401" in responses) == path.startswith("/v1/"), (method, path)
            # Only feedback, drift and admin routes need a particular scope.
            assert ("403" in responses) == scoped, (method, path)
            if path.startswith("/v1/"):
                anonymous_allowed = {} in operation["security"]
                assert anonymous_allowed != keyed, (method, path)
            else:
                assert "security" not in operation, (method, path)
            assert ("503" in responses) == (path != "/healthz"), (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "415"} <= set(responses), (method, path)
    anonymous = await client.post("/v1/admin/models/reload")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"


async def test_labelled_counters_start_at_zero(client: Any) -> None:
    """A fresh deployment's dashboard shows 0 labels, runs and evictions, not "No data"."""
    metrics = (await client.get("/metrics")).text
    for line in (
        'anomaly_feedback_labels_total{label="normal",model="test-plant"} 0.0',
        'anomaly_feedback_labels_total{label="anomaly",model="test-plant"} 0.0',
        'anomaly_recalibration_runs_total{model="test-plant",outcome="applied"} 0.0',
        'anomaly_recalibration_runs_total{model="test-plant",outcome="failed"} 0.0',
        'anomaly_stream_evictions_total{reason="lru"} 0.0',
        'anomaly_stream_evictions_total{reason="ttl"} 0.0',
        'anomaly_recent_readings_dropped_total{store="process"} 0.0',
        'anomaly_recent_readings_dropped_total{store="redis"} 0.0',
    ):
        assert line in metrics, line


async def test_refusals_while_not_ready_do_not_flood_the_log(
    tmp_path: Path, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Every request is a 503 while no model loads: one ERROR line per kind per interval,
    not one per request."""
    client = await make_client(models_dir=tmp_path / "missing")
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="service.api.problems"):
        for _ in range(200):
            reply = await client.post("/v1/score", json={"stream_id": "s", "reading": [0.0]})
            assert reply.status_code == 503
    lines = [r for r in caplog.records if r.name == "service.api.problems"]
    assert 1 <= len(lines) <= 2, [r.getMessage() for r in lines]
