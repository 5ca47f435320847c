"""POST /v1/score through the real app: scoring, smoothing, windows, eviction, bad input."""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from conftest import AppClient, ArtifactWriter, ClientFactory

SCORE = "/v1/score"


def sample(client: AppClient, name: str, labels: dict[str, str] | None = None) -> float:
    value = client.state.registry.get_sample_value(name, labels or {})
    return 0.0 if value is None else value


async def score(client: AppClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(SCORE, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    reply: dict[str, Any] = response.json()
    return reply


async def test_single_reading(client: AppClient) -> None:
    reply = await score(client, {"stream_id": "pump-1", "reading": [3.0, 1.0, 0.0, 0.0]})
    assert reply["model"] == "test-plant" and reply["model_version"] == "1"
    result = reply["result"]
    # mean([9, 1, 0, 0]) = 2.5 against threshold 1.0
    assert result["error"] == pytest.approx(2.5)
    assert result["score"] == pytest.approx(2.5)
    assert result["threshold"] == 1.0 and result["threshold_version"] == 1
    assert result["anomaly"] is True and result["status"] == "scored"
    assert result["smoothed_score"] == pytest.approx(2.5)
    assert result["alert_state"] == "normal" and result["alert"] is False
    top = result["top_sensors"]
    assert [t["sensor"] for t in top] == ["s0", "s1", "s2"]
    assert top[0]["share"] == pytest.approx(0.9) and top[1]["share"] == pytest.approx(0.1)
    assert top[0]["observed"] == 3.0 and top[0]["reconstructed"] == 0.0
    assert client.state.recent.get(result["reading_id"]) is not None
    assert sample(client, "anomaly_readings_scored_total", {"model": "test-plant"}) == 1
    assert sample(client, "anomaly_anomalies_total", {"model": "test-plant"}) == 1


async def test_batch_named_and_wrapped(client: AppClient) -> None:
    reply = await score(
        client,
        {
            "stream_id": "pump-2",
            "model": "test-plant",
            "readings": [
                [0.5, 0.0, 0.0, 0.0],
                {"values": {"s3": 2.0, "s0": 0.0, "s1": 0.0, "s2": 0.0}, "reading_id": "mine-1"},
                {"values": [0, 0, 0, 1], "timestamp": "2026-03-01T12:00:00+00:00"},
            ],
        },
    )
    results = reply["results"]
    assert [r["error"] for r in results] == pytest.approx([0.0625, 1.0, 0.25])
    assert results[1]["reading_id"] == "mine-1"
    assert results[1]["top_sensors"][0]["sensor"] == "s3"
    assert results[1]["anomaly"] is False  # exactly at the threshold is not above it
    assert results[2]["timestamp"] == 1772366400.0
    ids = [r["reading_id"] for r in results]
    assert len(set(ids)) == 3
    stored = client.state.recent.get("mine-1")
    assert stored is not None and stored.stream_id == "pump-2"
    np.testing.assert_array_equal(stored.values, [0, 0, 0, 2])


async def test_reading_ids_unique_across_requests(client: AppClient) -> None:
    seen: set[str] = set()
    for _ in range(3):
        reply = await score(client, {"stream_id": "s", "readings": [[0, 0, 0, 0]] * 5})
        seen.update(r["reading_id"] for r in reply["results"])
    assert len(seen) == 15


async def test_binary_float32_and_npy(client: AppClient) -> None:
    values = np.zeros((6, 4), dtype="<f4")
    values[4, 2] = 3.0
    response = await client.post(
        f"{SCORE}?stream_id=bulk",
        content=values.tobytes(),
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["count"] == 6 and body["warming_up"] == 0
    assert body["error"] == pytest.approx([0, 0, 0, 0, 2.25, 0])
    assert body["anomaly"] == [False, False, False, False, True, False]
    assert body["sensors"][body["top_sensor_index"][4][0]] == "s2"
    last = client.state.recent.get(body["last_reading_id"])
    assert last is not None and last.stream_id == "bulk"
    buffer = io.BytesIO()
    np.save(buffer, values.astype(np.float64))
    response = await client.post(
        SCORE,
        content=buffer.getvalue(),
        headers={"content-type": "application/x-npy", "x-stream-id": "bulk"},
    )
    assert response.status_code == 200 and response.json()["count"] == 6
    assert sample(client, "anomaly_readings_scored_total", {"model": "test-plant"}) == 12


async def test_binary_reply_as_npz_holds_the_columnar_fields(make_client: ClientFactory) -> None:
    """The same readings on two fresh streams, one answered in JSON and one in .npz: the same
    fields and values, read back with numpy alone."""
    client = await make_client()
    values = np.zeros((6, 4), dtype="<f4")
    values[4, 2] = 3.0
    accept = {"as-json": "application/json", "as-npz": "application/json;q=0.5, application/x-npz"}
    replies = {
        stream: await client.post(
            f"{SCORE}?stream_id={stream}",
            content=values.tobytes(),
            headers={"content-type": "application/octet-stream", "accept": wanted},
        )
        for stream, wanted in accept.items()
    }
    assert replies["as-json"].headers["content-type"] == "application/json"
    assert replies["as-npz"].headers["content-type"] == "application/x-npz"
    as_json = replies["as-json"].json()
    with np.load(io.BytesIO(replies["as-npz"].content), allow_pickle=False) as arrays:
        as_npz = {name: arrays[name] for name in arrays.files}
    assert set(as_npz) == set(as_json)
    assert str(as_npz["stream_id"]) == "as-npz"
    for name, expected in as_json.items():
        if name in ("stream_id", "first_reading_id", "last_reading_id"):
            continue
        if as_npz[name].dtype.kind == "U":  # names: the model, its version, sensors, states
            assert as_npz[name].tolist() == expected, name
        else:
            np.testing.assert_allclose(as_npz[name], np.asarray(expected), rtol=1e-6, err_msg=name)


async def test_npz_is_only_for_binary_bodies(client: AppClient) -> None:
    response = await client.post(
        SCORE,
        json={"stream_id": "s", "reading": [0, 0, 0, 0]},
        headers={"accept": "application/x-npz"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"


async def test_smoothing_and_debouncing(make_client: ClientFactory) -> None:
    client = await make_client(
        smoothing_method="mean", smoothing_window=2, alert_k=2, alert_n=3, alert_cooldown=3
    )
    high, low = [2.0, 2.0, 2.0, 2.0], [0.0, 0.0, 0.0, 0.0]  # scores 4 and 0
    states, smoothed = [], []
    for reading in [low, high, low, low, low, high, high, low, low, low, low]:
        result = (await score(client, {"stream_id": "s", "reading": reading}))["result"]
        states.append(result["alert_state"])
        smoothed.append(result["smoothed_score"])
    assert smoothed == pytest.approx([0, 2, 2, 0, 0, 2, 4, 2, 0, 0, 0])
    # k=2 of n=3 smoothed scores above 1: the lone high reading alerts only because the
    # mean spreads it over two readings; at index 6 the rule holds but the cool-down
    # (3 readings from the one that cleared the alert) holds the new alert back.
    assert states == [
        "normal", "normal", "alert", "alert", "cooldown", "cooldown", "cooldown",
        "alert", "alert", "cooldown", "cooldown",
    ]  # fmt: skip
    assert sample(client, "anomaly_alerts_total", {"model": "test-plant"}) == 2


async def test_single_blip_does_not_alert(make_client: ClientFactory) -> None:
    client = await make_client(smoothing_method="median", smoothing_window=3, alert_k=2, alert_n=3)
    readings = [[0.1, 0, 0, 0]] * 5 + [[30.0, 0, 0, 0]] + [[0.1, 0, 0, 0]] * 5
    reply = await score(client, {"stream_id": "s", "readings": readings})
    assert reply["results"][5]["anomaly"] is True
    assert {r["alert_state"] for r in reply["results"]} == {"normal"}
    assert reply["alerts_raised"] == 0


async def test_windowed_model_warms_up(tmp_path: Path, write_test_artifact: ArtifactWriter,
                                       make_client: ClientFactory) -> None:  # fmt: skip
    models = tmp_path / "windowed"
    write_test_artifact(models, "windowed", window=3)
    client = await make_client(models_dir=models)
    first = (await score(client, {"stream_id": "w", "reading": [1, 1, 1, 1]}))["result"]
    assert first["status"] == "warming_up" and first["alert_state"] == "warming_up"
    assert first["readings_needed"] == 2 and "error" not in first
    reply = await score(client, {"stream_id": "w", "readings": [[3, 3, 3, 3], [2, 2, 2, 6]]})
    warming, scored = reply["results"]
    assert warming["status"] == "warming_up" and warming["readings_needed"] == 1
    # window [1, 3, (2, 2, 2, 6)]: expected mean 2 → squared errors [0, 0, 0, 16] → 4.0
    assert scored["status"] == "scored" and scored["error"] == pytest.approx(4.0)
    assert scored["top_sensors"][0] == {
        "sensor": "s3", "share": 1.0, "observed": 6.0, "reconstructed": 2.0,
    }  # fmt: skip
    other = (await score(client, {"stream_id": "other", "reading": [1, 1, 1, 1]}))["result"]
    assert other["status"] == "warming_up"  # each stream has its own buffer
    assert sample(client, "anomaly_readings_scored_total", {"model": "windowed"}) == 1


async def test_lru_eviction(make_client: ClientFactory) -> None:
    client = await make_client(stream_capacity=2)
    for stream in ("a", "b", "c"):
        await score(client, {"stream_id": stream, "reading": [0, 0, 0, 0]})
    assert len(client.state.streams) == 2
    assert ("test-plant", "a") not in client.state.streams
    assert sample(client, "anomaly_stream_evictions_total", {"reason": "lru"}) == 1
    metrics = (await client.get("/metrics")).text
    assert "anomaly_active_streams 2.0" in metrics


async def test_readings_let_go_for_the_bound_are_counted(make_client: ClientFactory) -> None:
    client = await make_client(recent_max_readings=3)
    readings = [[0, 0, 0, float(i)] for i in range(70)]  # a chunk of its own
    await score(client, {"stream_id": "a", "readings": readings})
    assert sample(client, "anomaly_recent_readings_dropped_total", {"store": "process"}) == 70
    assert sample(client, "anomaly_recent_readings_dropped_total", {"store": "redis"}) == 0


async def test_ttl_eviction_with_injected_clock(make_client: ClientFactory) -> None:
    client = await make_client(stream_idle_ttl_s=60, smoothing_method="mean", smoothing_window=5)
    now = [1000.0]
    client.state.streams.clock = lambda: now[0]
    await score(client, {"stream_id": "a", "reading": [2, 2, 2, 2]})  # score 4
    now[0] += 61
    result = (await score(client, {"stream_id": "a", "reading": [0, 0, 0, 0]}))["result"]
    assert result["smoothed_score"] == 0.0  # the idle state was dropped: smoothing restarted
    assert sample(client, "anomaly_stream_evictions_total", {"reason": "ttl"}) == 1
    await score(client, {"stream_id": "b", "reading": [0, 0, 0, 0]})
    now[0] += 61
    await score(client, {"stream_id": "c", "reading": [0, 0, 0, 0]})
    assert sample(client, "anomaly_stream_evictions_total", {"reason": "ttl"}) == 3
    assert len(client.state.streams) == 1


def snapshot(client: AppClient) -> tuple[Any, ...]:
    state = client.state.streams.peek(("test-plant", "s"))
    assert state is not None
    return (
        len(client.state.streams),
        len(client.state.recent),
        state.smoother.get(),
        state.debouncer.phase,
        tuple(state.debouncer._bits),
        state.last_seen,
        sample(client, "anomaly_readings_scored_total", {"model": "test-plant"}),
    )


GOOD = [0.5, 0.5, 0.5, 0.5]
BAD_REQUESTS: list[tuple[str, bytes, str, int, str | None, int | None]] = [
    # (case, body, content type, status, field, reading index)
    ("malformed", b'{"stream_id": "s", "readings": [[1,2', "application/json", 400, None, None),
    ("not-object", b"[1, 2, 3, 4]", "application/json", 422, "body", None),
    ("empty-body", b"", "application/json", 400, None, None),
    ("nan", b'{"stream_id":"s","readings":[[0,0,0,0],[0,NaN,0,0]]}', "application/json", 422,
     "values[1]", 1),
    ("inf", b'{"stream_id":"s","readings":[[0,0,0,0],[0,0,1e999,0]]}', "application/json", 422,
     "values[2]", 1),
    ("null", orjson.dumps({"stream_id": "s", "readings": [GOOD, [0, 0, None, 0]]}),
     "application/json", 422, "values[2]", 1),
    ("short", orjson.dumps({"stream_id": "s", "readings": [GOOD, GOOD, [1, 2, 3]]}),
     "application/json", 422, "values", 2),
    ("unknown-sensor", orjson.dumps({"stream_id": "s", "readings": [
        GOOD, {"values": {"s0": 1, "s1": 1, "s2": 1, "s3": 1, "s9": 1}}]}),
     "application/json", 422, "values", 1),
    ("missing-sensor", orjson.dumps({"stream_id": "s", "reading": {"values": {"s0": 1}}}),
     "application/json", 422, "values", 0),
    ("string-value", orjson.dumps({"stream_id": "s", "readings": [GOOD, [0, "x", 0, 0]]}),
     "application/json", 422, "values[1]", 1),
    ("empty-batch", orjson.dumps({"stream_id": "s", "readings": []}), "application/json", 422,
     "readings", None),
    ("batch-too-large", orjson.dumps({"stream_id": "s", "readings": [GOOD] * 9}),
     "application/json", 413, "readings", None),
    ("no-stream", orjson.dumps({"reading": GOOD}), "application/json", 422, "stream_id", None),
    ("unknown-model", orjson.dumps({"stream_id": "s", "model": "nope", "reading": GOOD}),
     "application/json", 404, None, None),
    ("media-type", b"0.5,0.5,0.5,0.5", "text/csv", 415, None, None),
    ("binary-partial", b"\0" * 20, "application/octet-stream", 422, "body", None),
    ("binary-nan", np.array([GOOD, [0, np.nan, 0, 0]], dtype="<f4").tobytes(),
     "application/octet-stream", 422, "values[1]", 1),
    # orjson refuses a lone surrogate, the standard parser reads it: it broke the reply after
    # the stream had moved, then the review queue and the label store.
    ("lone-surrogate-id", b'{"stream_id":"s","readings":[[0,0,0,0],{"values":[0,0,0,0],'
     b'"reading_id":"\\udc00x"}]}', "application/json", 422, "reading_id", 1),
    ("overflowing-error", orjson.dumps({"stream_id": "s", "readings": [GOOD, [0, 0, 1e30, 0]]}),
     "application/json", 422, "values[2]", 1),
    ("oversized", orjson.dumps({"stream_id": "s", "readings": [GOOD] * 5, "pad": "x" * 5000}),
     "application/json", 413, None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "body", "content_type", "status", "field", "index"),
    BAD_REQUESTS,
    ids=[case[0] for case in BAD_REQUESTS],
)
async def test_bad_input_is_refused_and_changes_nothing(
    make_client: ClientFactory,
    case: str,
    body: bytes,
    content_type: str,
    status: int,
    field: str | None,
    index: int | None,
) -> None:
    client = await make_client(max_batch_readings=8, max_body_bytes=4096)
    await score(client, {"stream_id": "s", "readings": [[2, 2, 2, 2], GOOD]})
    before = snapshot(client)
    response = await client.post(
        f"{SCORE}?stream_id=s", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    assert problem["type"].startswith("https://")
    if field is not None:
        assert problem["errors"][0]["field"] == field
        assert problem["errors"][0]["reading_index"] == index
    assert snapshot(client) == before
    assert (
        sample(
            client,
            "anomaly_http_requests_total",
            {"endpoint": "/v1/score", "method": "POST", "status": str(status)},
        )
        == 1
    )


async def test_streamed_oversized_body_without_length(make_client: ClientFactory) -> None:
    client = await make_client(max_body_bytes=2048)

    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 512

    response = await client.post(
        SCORE, content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["title"] == "Request body too large"


async def test_garbage_never_yields_a_500(client: AppClient) -> None:
    rng = random.Random(11)
    bodies: list[bytes] = [
        bytes(rng.getrandbits(8) for _ in range(200)),
        b"\xff\xfe\x00{",
        b"[" * 5000 + b"]" * 5000,
        b'{"stream_id": {"a": 1}, "reading": [1,2,3,4]}',
        b'{"stream_id": "s", "reading": {"values": null}}',
        b'{"stream_id": "s", "reading": {"values": {"s0": [1]}}}',
        b'{"stream_id": "s", "readings": [null, 1, "a", {}]}',
        b'{"stream_id": "s", "reading": [1e308, 1e308, 1e308, 1e308]}',
        b'{"stream_id": "s", "reading": [123456789012345678901234567890, 0, 0, 0]}',
        b'{"stream_id": "s", "model": 5, "reading": [0, 0, 0, 0]}',
        b'{"stream_id": "s", "reading": {"values": [0,0,0,0], "timestamp": [1]}}',
        b'{"stream_id": "s", "reading": {"values": [0,0,0,0], "reading_id": 7}}',
        b'{"stream_id": "' + b"x" * 300 + b'", "reading": [0,0,0,0]}',
        b'"just a string"',
        b"null",
        '{"stream_id": "ü", "reading": [0, 0, 0, "∞"]}'.encode(),
    ]
    for _ in range(20):
        values = [rng.choice([0, 1.5, None, "1", [], {}, True, -1e40]) for _ in range(4)]
        bodies.append(orjson.dumps({"stream_id": "fuzz", "reading": values}))
    for body in bodies:
        for content_type in ("application/json", "application/octet-stream", "application/x-npy"):
            response = await client.post(
                f"{SCORE}?stream_id=f", content=body, headers={"content-type": content_type}
            )
            assert 200 <= response.status_code < 500, (body[:80], content_type, response.text)
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json"


async def test_stream_status_and_reset(make_client: ClientFactory) -> None:
    client = await make_client(api_keys=[{"name": "root", "scopes": ["admin"], "key": "k" * 40}])
    missing = await client.get("/v1/streams/s")
    assert missing.status_code == 404 and missing.json()["title"] == "No such stream"
    await score(client, {"stream_id": "s", "readings": [[2, 2, 2, 2]] * 4})
    status = (await client.get("/v1/streams/s", params={"model": "test-plant"})).json()
    assert status["alert_state"] == "alert" and status["smoothed_score"] == 4.0
    assert status["model"] == "test-plant" and status["window"] == 1
    admin = {"Authorization": "Bearer " + "k" * 40}
    assert (await client.delete("/v1/admin/streams/s")).status_code in (401, 403)
    assert (await client.delete("/v1/admin/streams/s", headers=admin)).status_code == 204
    assert (await client.get("/v1/streams/s")).status_code == 404
    again = (await score(client, {"stream_id": "s", "reading": [0, 0, 0, 0]}))["result"]
    assert again["alert_state"] == "normal" and again["smoothed_score"] == 0.0


async def test_stream_ids_fit_the_stream_routes(client: AppClient) -> None:
    """An id with "/" could be scored but never reached by GET /v1/streams/{id}: refused."""
    refused = await client.post(SCORE, json={"stream_id": "line-3/pump-7", "reading": [0] * 4})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "stream_id"
    await score(client, {"stream_id": "line-3.pump-7", "reading": [0, 0, 0, 0]})
    assert (await client.get("/v1/streams/line-3.pump-7")).status_code == 200


async def test_booleans_among_numbers_are_refused(client: AppClient) -> None:
    response = await client.post(SCORE, json={"stream_id": "s", "reading": [True, 2.5, 3, 4]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "values[0]"
