"""Replicas sharing stream state through a real redis-server: a stream whose readings go to
two apps in turn is answered exactly as one process answers it (every field of every
reply), a label reaches a reading another replica scored, and Redis going away is a 503
with a reason, not a silently fresh stream, until it is back."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from redis_harness import RedisServer

from service.app import create_app
from service.settings import Settings

pytestmark = pytest.mark.integration

SCORE = "/v1/score"
OPERATOR_KEY = "operator-redis-test-4b3a29180f7e6d5c4b3a2918"
API_KEYS = [{"name": "olga-operator", "scopes": ["feedback"], "key": OPERATOR_KEY}]
OPERATOR = {"X-API-Key": OPERATOR_KEY}
MODELS = ("test-plant", "windowed")  # a window of 1 and a window of 4


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def two_models(tmp_path: Path, write_test_artifact: Any) -> Path:
    folder = tmp_path / "two-models"
    write_test_artifact(folder, "test-plant")
    write_test_artifact(folder, "windowed", window=4)
    write_test_artifact(folder, "guarded", window=3, glitch_limits=[2.0] * 4)
    return folder


class Apps:
    """Apps with their lifespans running, each with its own metrics and feedback store."""

    def __init__(self, stack: AsyncExitStack, models_dir: Path, tmp_path: Path) -> None:
        self.stack = stack
        self.models_dir = models_dir
        self.tmp_path = tmp_path
        self.count = 0

    async def start(self, **overrides: Any) -> httpx.AsyncClient:
        self.count += 1
        settings = Settings(
            models_dir=self.models_dir,
            default_model="test-plant",
            store_path=self.tmp_path / f"feedback-{self.count}.sqlite3",
            api_keys=API_KEYS,
            **overrides,
        )
        app = create_app(settings, registry=CollectorRegistry())
        await self.stack.enter_async_context(app.router.lifespan_context(app))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver",
        )
        return await self.stack.enter_async_context(client)


@pytest.fixture
async def apps(two_models: Path, tmp_path: Path) -> AsyncIterator[Apps]:
    async with AsyncExitStack() as stack:
        yield Apps(stack, two_models, tmp_path)


def traffic(seed: int, count: int, streams: tuple[str, ...]) -> list[dict[str, Any]]:
    """Scoring bodies around the threshold (so alerts rise, clear and cool down): single
    readings and batches, short and long (the vectorised paths), for both models. Every
    reading carries an id and a timestamp, so every field of a reply is comparable."""
    rng = np.random.default_rng(seed)
    bodies: list[dict[str, Any]] = []
    clock = 1_767_600_000.0
    for i in range(count):
        stream = streams[int(rng.integers(len(streams)))]
        model = MODELS[int(rng.integers(len(MODELS)))]
        size = 1 if rng.random() < 0.5 else int(rng.choice([2, 5, 17, 40]))
        scale = 0.6 if (i // 12) % 2 == 0 else 1.6  # calm, then restless spells
        values = rng.normal(0, scale, size=(size, 4)).round(4)
        readings = []
        for row in values.tolist():
            clock += 1.0
            readings.append(
                {"values": row, "reading_id": f"{stream}-{clock:.0f}", "timestamp": clock}
            )
        body: dict[str, Any] = {"stream_id": stream, "model": model}
        if size == 1 and rng.random() < 0.7:
            body["reading"] = readings[0]
        else:
            body["readings"] = readings
        bodies.append(body)
    return bodies


async def replies(client: httpx.AsyncClient, bodies: list[dict[str, Any]]) -> list[Any]:
    out = []
    for body in bodies:
        response = await client.post(SCORE, json=body)
        assert response.status_code == 200, response.text
        out.append(response.json())
    return out


async def test_alternating_replicas_answer_as_one_process(
    apps: Apps, redis_server: RedisServer
) -> None:
    one = await apps.start()
    a = await apps.start(redis_url=redis_server.url)
    b = await apps.start(redis_url=redis_server.url)
    bodies = traffic(seed=7, count=160, streams=("pump-1", "pump-2", "fan-3"))
    expected = await replies(one, bodies)
    got = []
    for i, body in enumerate(bodies):
        got += await replies((a, b)[i % 2], [body])
    assert got == expected
    states = [r["result"]["alert_state"] if "result" in r else None for r in expected]
    batch_states = {x["alert_state"] for r in expected for x in r.get("results", [])}
    assert {"alert", "cooldown", "warming_up"} <= set(states) | batch_states  # all exercised
    # Either replica shows a stream as the single process holds it.
    for stream in ("pump-1", "fan-3"):
        for model in MODELS:
            path = f"/v1/streams/{stream}?model={model}"
            mine, shown_a, shown_b = [(await c.get(path)).json() for c in (one, a, b)]
            for shown in (shown_a, shown_b):
                for field in ("alert_state", "smoothed_score", "readings_buffered", "window"):
                    assert shown[field] == mine[field], (stream, model, field)


def glitched_readings(metrics: str) -> float:
    """``anomaly_glitched_readings_total`` of the guarded model in a /metrics text."""
    prefix = 'anomaly_glitched_readings_total{model="guarded"} '
    lines = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(lines[0].removeprefix(prefix)) if lines else 0.0


async def test_replicas_count_each_glitch_once_between_them(
    apps: Apps, redis_server: RedisServer
) -> None:
    """A stream alternating replicas has each glitch counted once, by the replica whose
    request brings its successor: the replicas' counts add up to one process's."""
    one = await apps.start()
    a = await apps.start(redis_url=redis_server.url)
    b = await apps.start(redis_url=redis_server.url)
    rng = np.random.default_rng(3)
    run = rng.normal(0, 0.3, size=(90, 4)).round(4)
    run[rng.choice(np.arange(1, 89), size=12, replace=False), rng.integers(0, 4, 12)] += 6.0
    bodies: list[dict[str, Any]] = []
    start = 0
    while start < len(run):
        size = int(rng.choice([1, 1, 2, 5]))
        rows = run[start : start + size].tolist()
        body: dict[str, Any] = {"stream_id": "g-1", "model": "guarded"}
        body.update({"reading": rows[0]} if size == 1 else {"readings": rows})
        bodies.append(body)
        start += size
    await replies(one, bodies)
    for i, body in enumerate(bodies):
        await replies((a, b)[i % 2], [body])
    alone, shares = [
        [glitched_readings((await c.get("/metrics")).text) for c in clients]
        for clients in ((one,), (a, b))
    ]
    assert alone[0] >= 8
    assert all(share > 0 for share in shares) and sum(shares) == alone[0]


async def test_concurrent_clients_on_both_replicas_keep_each_stream_exact(
    apps: Apps, redis_server: RedisServer
) -> None:
    """Several streams at once, each alternating replicas: the batcher of each replica
    groups them, and readings of a stream that the other replica moved on are scored again."""
    one = await apps.start()
    a = await apps.start(redis_url=redis_server.url)
    b = await apps.start(redis_url=redis_server.url)
    streams = [f"line-{i}" for i in range(6)]
    per_stream = {s: traffic(seed=i, count=30, streams=(s,)) for i, s in enumerate(streams)}
    expected = {s: await replies(one, bodies) for s, bodies in per_stream.items()}

    async def feed(stream: str, offset: int) -> list[Any]:
        got = []
        for i, body in enumerate(per_stream[stream]):
            got += await replies((a, b)[(i + offset) % 2], [body])
        return got

    results = await asyncio.gather(*(feed(s, i) for i, s in enumerate(streams)))
    assert dict(zip(streams, results, strict=True)) == expected


async def test_a_label_reaches_a_reading_scored_by_the_other_replica(
    apps: Apps, redis_server: RedisServer
) -> None:
    a = await apps.start(redis_url=redis_server.url)
    b = await apps.start(redis_url=redis_server.url)
    scored = await a.post(SCORE, json={"stream_id": "pump-9", "reading": [2.0, 0, 0, 0]})
    assert scored.status_code == 200, scored.text
    result = scored.json()["result"]
    generated = result["reading_id"]
    labelled = await b.post(
        "/v1/feedback", json={"label": "anomaly", "reading_ids": [generated]}, headers=OPERATOR
    )
    assert labelled.status_code == 201, labelled.text
    label = labelled.json()["labels"][0]
    assert (label["reading_id"], label["stream_id"]) == (generated, "pump-9")
    assert label["error"] == pytest.approx(1.0)  # mean of (4, 0, 0, 0), as A scored it
    assert label["sensor_errors"] == pytest.approx([4.0, 0.0, 0.0, 0.0])
    assert label["scored_anomaly"] == result["anomaly"]
    # A client id that two streams carry needs the stream, whichever replica is asked.
    for stream, replica in (("x", a), ("y", b)):
        body = {"stream_id": stream, "reading": {"values": [0, 0, 0, 1], "reading_id": "id-7"}}
        assert (await replica.post(SCORE, json=body)).status_code == 200
    ambiguous = await b.post(
        "/v1/feedback", json={"label": "normal", "reading_ids": ["id-7"]}, headers=OPERATOR
    )
    assert ambiguous.status_code == 409, ambiguous.text
    chosen = await b.post(
        "/v1/feedback",
        json={"label": "normal", "reading_ids": ["id-7"], "stream_id": "x"},
        headers=OPERATOR,
    )
    assert chosen.status_code == 201, chosen.text
    unknown = await b.post(
        "/v1/feedback", json={"label": "normal", "reading_ids": ["never-scored"]}, headers=OPERATOR
    )
    assert unknown.status_code == 404, unknown.text


async def test_every_replica_together_keeps_at_most_the_bound_for_labels_by_id(
    apps: Apps, redis_server: RedisServer
) -> None:
    """ANOMALY_RECENT_MAX_READINGS bounds the readings in Redis across the replicas: past
    it the oldest go before their retention ends, a label by their id is refused saying
    why, and the replica that let them go counts them."""
    settings = {"redis_url": redis_server.url, "recent_max_readings": 2}
    a = await apps.start(**settings, recent_retention_s=16.0)  # buckets of a second
    b = await apps.start(**settings, recent_retention_s=16.0)
    body = {
        "stream_id": "s",
        "readings": [{"values": [0, 0, 0, 0], "reading_id": f"first-{i}"} for i in range(2)],
    }
    assert (await a.post(SCORE, json=body)).status_code == 200
    await asyncio.sleep(1.1)
    later = {"stream_id": "t", "reading": {"values": [0, 0, 0, 0], "reading_id": "later"}}
    assert (await b.post(SCORE, json=later)).status_code == 200
    for reading_id, status in (("first-1", 404), ("later", 201)):
        labelled = await a.post(
            "/v1/feedback", json={"label": "normal", "reading_ids": [reading_id]}, headers=OPERATOR
        )
        assert labelled.status_code == status, labelled.text
    refused = await a.post(
        "/v1/feedback", json={"label": "normal", "reading_ids": ["first-0"]}, headers=OPERATOR
    )
    assert "2 most recent readings every replica keeps together" in refused.json()["detail"]
    metrics = {name: (await replica.get("/metrics")).text for name, replica in (("a", a), ("b", b))}
    assert 'anomaly_recent_readings_dropped_total{store="redis"} 2.0' in metrics["b"]
    assert 'anomaly_recent_readings_dropped_total{store="redis"} 0.0' in metrics["a"]
    assert 'anomaly_recent_readings_dropped_total{store="process"} 0.0' in metrics["a"]


async def test_a_repeated_reading_id_is_scored_again_in_arrival_order(
    apps: Apps, redis_server: RedisServer
) -> None:
    """The documented policy: ids neither order nor deduplicate readings. A resent reading
    is a new reading of its stream (it moves the smoothing and the k-of-n window), and a
    label by that id reaches the latest one; an older timestamp after a newer one is
    scored where it arrives. Shared state follows exactly what one process does."""
    one = await apps.start()
    a = await apps.start(redis_url=redis_server.url)
    b = await apps.start(redis_url=redis_server.url)
    stamps = [100.0, 101.0, 101.0, 99.0, 102.0]
    bodies = [
        {
            "stream_id": "s",
            "reading": {"values": [1.5 * (i % 2), 0, 0, 1.2], "reading_id": "dup", "timestamp": t},
        }
        for i, t in enumerate(stamps)
    ]
    expected = await replies(one, bodies)
    got = [(await replies((a, b)[i % 2], [body]))[0] for i, body in enumerate(bodies)]
    assert got == expected
    assert [r["result"]["timestamp"] for r in got] == stamps
    smoothed = [r["result"]["smoothed_score"] for r in got]
    assert len(set(smoothed)) > 1  # each resend moved the stream
    label = await a.post(
        "/v1/feedback", json={"label": "normal", "reading_ids": ["dup"]}, headers=OPERATOR
    )
    assert label.status_code == 201, label.text
    assert label.json()["labels"][0]["reading_time"] == "1970-01-01T00:01:42Z"  # the latest


async def test_redis_down_is_a_503_with_a_reason_and_recovers_without_restart(
    apps: Apps, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    a = await apps.start(redis_url=redis_server.url, redis_timeout_s=1.0)
    windowed = {"stream_id": "p", "model": "windowed"}
    first = await a.post(SCORE, json=windowed | {"readings": [[0.5, 0, 0, 0]] * 3})
    assert first.status_code == 200, first.text
    assert (await a.get("/readyz")).status_code == 200
    redis_server.stop()
    for body in (
        windowed | {"reading": [0.5, 0, 0, 0]},
        windowed | {"readings": [[0.5, 0, 0, 0]] * 3},
    ):
        down = await a.post(SCORE, json=body)
        assert down.status_code == 503, down.text
        assert down.headers["content-type"].startswith("application/problem+json")
        problem = down.json()
        assert problem["title"] == "Stream state unavailable" and "Redis" in problem["detail"]
        assert f":{redis_server.port}" not in down.text
    port = f":{redis_server.port}"  # where Redis runs is in the log, in no answer
    with caplog.at_level(logging.INFO, logger="service.scoring.redis_streams"):
        for _ in range(2):
            ready = await a.get("/readyz")
            assert ready.status_code == 503
            assert "Redis" in ready.json()["detail"] and port not in ready.text
    probe_lines = [r.getMessage() for r in caplog.records if r.name.endswith("redis_streams")]
    assert len(probe_lines) == 1 and port in probe_lines[0], probe_lines
    stream = await a.get("/v1/streams/p?model=windowed")
    assert stream.status_code == 503 and port not in stream.text, stream.text
    label = await a.post(
        "/v1/feedback", json={"label": "normal", "reading_ids": ["x"]}, headers=OPERATOR
    )  # the shared readings' lookup
    assert label.status_code == 503 and port not in label.text, label.text
    redis_server.start()  # empty: no persistence, so the stream starts again
    back = await a.post(SCORE, json=windowed | {"reading": [0.5, 0, 0, 0]})
    assert back.status_code == 200, back.text
    with caplog.at_level(logging.INFO, logger="service.scoring.redis_streams"):
        assert (await a.get("/readyz")).status_code == 200
    assert caplog.records[-1].getMessage() == "readiness: stream state store (Redis): answers again"
    # The replica's copy was of a state Redis lost: the stream warms again from nothing,
    # as a fresh single process would, instead of carrying on from a history Redis lacks.
    fresh = await apps.start()
    again = await fresh.post(SCORE, json=windowed | {"reading": [0.5, 0, 0, 0]})
    assert back.json()["result"]["alert_state"] == "warming_up"
    assert without_id(back.json()["result"]) == without_id(again.json()["result"])
    shown = (await a.get("/v1/streams/p?model=windowed")).json()
    assert shown["readings_buffered"] == 1


async def test_redis_full_is_a_503_readiness_says_so_and_it_recovers(
    apps: Apps, redis_server: RedisServer
) -> None:
    """At maxmemory with noeviction Redis answers pings but refuses writes: scoring answers
    503 naming it, /readyz turns the replica away saying why, a metric counts it, and
    all is back once memory is freed."""
    a = await apps.start(redis_url=redis_server.url)
    admin = redis_server.client()
    try:
        used = int(admin.info("memory")["used_memory"])
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", str(used + 2_000_000))
        batch = {"stream_id": "f", "readings": [[0.1, 0.2, 0.3, 0.4]] * 2000}
        for _ in range(100):  # each batch keeps ~120 kB of readings: full well before
            response = await a.post(SCORE, json=batch)
            if response.status_code != 200:
                break
        assert response.status_code == 503, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert "full" in response.json()["detail"]
        assert admin.ping()  # a ping alone would call it healthy
        ready = await a.get("/readyz")
        assert ready.status_code == 503
        assert "full" in ready.json()["checks"]["stream_state"]
        metrics = (await a.get("/metrics")).text
        assert 'anomaly_stream_state_failures_total{reason="full"} 1.0' in metrics
        assert 'anomaly_stream_state_failures_total{reason="unreachable"} 0.0' in metrics

        admin.flushall()
        back = await a.post(SCORE, json=batch)
        assert back.status_code == 200, back.text
        assert (await a.get("/readyz")).status_code == 200
        # So full that it refuses even the smallest write: readiness needs no refusal first.
        admin.config_set("maxmemory", "1")
        ready = await a.get("/readyz")
        assert ready.status_code == 503 and "full" in ready.json()["checks"]["stream_state"]
        admin.config_set("maxmemory", "0")
        assert (await a.get("/readyz")).status_code == 200
    finally:
        admin.close()


async def test_a_hung_redis_costs_one_timeout_then_requests_fail_fast(
    apps: Apps, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stopped (SIGSTOP: it accepts connections but never answers): the first request
    waits for the timeout, the next ones are refused at once while the breaker is open."""
    a = await apps.start(redis_url=redis_server.url, redis_timeout_s=0.5, redis_breaker_s=60.0)
    body = {"stream_id": "h", "reading": [0.1, 0, 0, 0]}
    assert (await a.post(SCORE, json=body)).status_code == 200
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)
    try:
        first = await a.post(SCORE, json=body)
        assert first.status_code == 503, first.text
        assert "did not answer" in first.json()["detail"]
        # where Redis runs is the operator's to know (the log), not a scoring client's
        assert f":{redis_server.port}" not in first.text
        logged = [r.getMessage() for r in caplog.records if r.name == "service.api.problems"]
        assert any(f":{redis_server.port}" in line for line in logged), logged
        for _ in range(3):
            fast = await a.post(SCORE, json=body)
            assert fast.status_code == 503
            assert fast.headers["content-type"].startswith("application/problem+json")
            assert "refused at once" in fast.json()["detail"]
        metrics = (await a.get("/metrics")).text
        assert 'anomaly_stream_state_failures_total{reason="timeout"} 1.0' in metrics
        assert 'anomaly_stream_state_failures_total{reason="breaker_open"} 3.0' in metrics
    finally:
        redis_server.process.send_signal(signal.SIGCONT)


def without_id(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "reading_id"}


async def test_a_request_costs_one_script_call_whatever_its_size(
    apps: Apps, redis_server: RedisServer
) -> None:
    """One round trip per request on a stream that stays on one replica: the readings of a
    batch are written by the script, not by a call each."""
    a = await apps.start(redis_url=redis_server.url)
    warm = await a.post(SCORE, json={"stream_id": "w", "reading": [0.1, 0, 0, 0]})
    assert warm.status_code == 200  # the script is loaded now
    admin = redis_server.client()
    try:
        admin.config_resetstat()
        bodies = [{"stream_id": "w", "reading": [0.1 * i, 0, 0, 0]} for i in range(10)]
        bodies += [{"stream_id": "w", "readings": [[0.2, 0, 0, 0]] * 40}] * 2
        await replies(a, bodies)
        stats = admin.info("commandstats")
    finally:
        admin.close()
    calls = {name: int(entry["calls"]) for name, entry in stats.items()}
    assert calls.get("cmdstat_evalsha", 0) == len(bodies)
    assert calls.get("cmdstat_eval", 0) == 0
    assert calls.get("cmdstat_hget", 0) == 0 and calls.get("cmdstat_get", 0) == 0


async def test_a_state_another_replica_cannot_restore_is_replaced_not_fought_over(
    apps: Apps, redis_server: RedisServer, tmp_path: Path, write_test_artifact: Any
) -> None:
    """During a rollout a replica may serve the model with another window: the state the
    other replica wrote does not fit, so the stream starts afresh instead of 503s."""
    a = await apps.start(redis_url=redis_server.url)
    other = tmp_path / "other-window"
    write_test_artifact(other, "test-plant")
    write_test_artifact(other, "windowed", window=2)
    apps.models_dir = other
    b = await apps.start(redis_url=redis_server.url)
    body = {"stream_id": "r", "model": "windowed", "readings": [[0.3, 0, 0, 0]] * 3}
    assert (await a.post(SCORE, json=body)).status_code == 200
    on_b = await b.post(SCORE, json=body)
    assert on_b.status_code == 200, on_b.text
    states = [r["alert_state"] for r in on_b.json()["results"]]
    assert states[0] == "warming_up" and states[1] != "warming_up"  # afresh, window 2
    again = await b.post(SCORE, json=body | {"readings": [[0.3, 0, 0, 0]]})
    assert again.status_code == 200 and again.json()["results"][0]["alert_state"] != "warming_up"


async def test_states_expire_with_the_idle_ttl_and_readings_with_the_retention(
    apps: Apps, redis_server: RedisServer
) -> None:
    """A request's readings are one value expiring with the retention; the index keys that
    point into it are per time bucket and outlive it by at most two buckets."""
    a = await apps.start(
        redis_url=redis_server.url, stream_idle_ttl_s=30.0, recent_retention_s=160.0
    )
    body = {"stream_id": "t", "reading": {"values": [0.1, 0, 0, 0], "reading_id": "t-1"}}
    assert (await a.post(SCORE, json=body)).status_code == 200
    admin = redis_server.client()
    try:
        (state_key,) = admin.keys("anomaly:s:*")
        state_ttl = admin.pttl(state_key)
        (value_key,) = admin.keys("anomaly:q:*")
        value_ttl = admin.pttl(value_key)
        index_ttls = {key: admin.pttl(key) for key in admin.keys("anomaly:[cl]:*")}
        (field,) = admin.hkeys(next(k for k in index_ttls if k.startswith(b"anomaly:c:")))
    finally:
        admin.close()
    assert 0 < state_ttl <= 30_000
    assert 30_000 < value_ttl <= 160_000
    assert len(index_ttls) == 2
    assert all(160_000 < ttl <= 160_000 + 2 * 10_000 for ttl in index_ttls.values())
    assert field == b"t-1\0t"


async def test_a_stream_twice_in_one_turn_scores_as_in_one_process(
    apps: Apps, redis_server: RedisServer
) -> None:
    """Single readings of one stream that arrive together share a turn (a windowed model
    takes them one run after another): the second sees the first, new stream or not."""
    one = await apps.start()
    a = await apps.start(redis_url=redis_server.url)
    rng = np.random.default_rng(11)
    for turn in range(4):
        bodies = [
            {"stream_id": "twice", "model": model, "reading": {
                "values": rng.normal(0, 1.2, size=4).round(3).tolist(),
                "reading_id": f"t{turn}-{i}", "timestamp": 1000.0 + 10 * turn + i}}
            for i in range(3) for model in MODELS
        ]  # fmt: skip
        expected = await asyncio.gather(*(one.post(SCORE, json=b) for b in bodies))
        got = await asyncio.gather(*(a.post(SCORE, json=b) for b in bodies))
        assert [r.json() for r in got] == [r.json() for r in expected], turn
