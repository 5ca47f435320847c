"""The high-availability mode all together, on real processes: PostgreSQL, Redis, three
``python -m service`` replicas on both and nginx round-robin in front (cluster_support.py).

- A: streams whose readings nginx spreads over the replicas get the replies one process
  with in-process state gives the same readings, every field.
- B: a label through one replica for a reading another scored is stored; the recalibration
  it triggers runs once, and every replica serves its version within 2 s.
- C: the leader killed with SIGKILL under scoring and labelling, several rounds: every
  acknowledged label is in PostgreSQL, another replica leads within the bound, versions
  stay gapless.
- D: Redis, then PostgreSQL, stopped and started again under load: the documented answers
  meanwhile (503 problem bodies, /readyz's reasons, scoring on the last thresholds), no
  500 and no broken connection, and recovery without restarting a replica.

Measured times are printed (``-s``); docs/high-availability.md records them. The bounds
asserted are derived from the settings below, generous enough for a loaded machine: they
fail when a mechanism is missing, not when the machine is slow.
"""

from __future__ import annotations

import math
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from balancer_support import support
from cluster_support import (
    AUTH,
    Cluster,
    ClusterSettings,
    LoadLoop,
    Outcome,
    Replica,
    cluster,
    reference_process,
    send,
)
from conftest import TEST_MODEL, build_test_artifact
from postgres_support import wait_until
from service_process import ServiceProcess

pytestmark = pytest.mark.integration

STORE_POLL_S = 0.25
REDIS_TIMEOUT_S = 1.0
LABELS_PER_RUN = 60  # the label trigger: one proof-B request is one run
SETTINGS = ClusterSettings(
    store_poll_s=STORE_POLL_S,
    redis_timeout_s=REDIS_TIMEOUT_S,
    env={
        "ANOMALY_DEFAULT_MODEL": TEST_MODEL,
        "ANOMALY_RECALIBRATION_INTERVAL_S": "3600",  # runs come from labels only
        "ANOMALY_RECALIBRATION_LABEL_TRIGGER": str(LABELS_PER_RUN),
        "ANOMALY_RECALIBRATION_MIN_SAMPLES": "50",
        "ANOMALY_RECALIBRATION_WINDOW_LABELS": str(LABELS_PER_RUN),
    },
)
# Proof A's models (never labelled, so their thresholds stay the manifest's), proof B's
# (labelled by B only), and the default model C labels.
EQUAL_MODELS = ("eq-single", "eq-windowed")
CALIBRATED = "calibrated"
# D's model: its labels' errors are far below its threshold, too few to show it too high, so
# a run they trigger writes no version while the test watches the versions.
OUTAGE = "outage"
# The bound on a new version reaching every replica. Notification brings it; the
# poll every STORE_POLL_S alone would.
PROPAGATION_BOUND_S = 2.0
# A killed leader's session ends when its socket closes; each follower tries the lock every
# STORE_POLL_S. The slack is for a loaded machine (and the test's own polling).
FAILOVER_BOUND_S = STORE_POLL_S + 10.0
ROUNDS = 3


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cluster-models")
    build_test_artifact(folder, TEST_MODEL)
    build_test_artifact(folder, CALIBRATED)
    build_test_artifact(folder, OUTAGE)
    build_test_artifact(folder, EQUAL_MODELS[0])
    build_test_artifact(folder, EQUAL_MODELS[1], window=4)
    return folder


@pytest.fixture(scope="module")
def the_cluster(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Iterator[Cluster]:
    with cluster(tmp_path_factory.mktemp("cluster"), models, SETTINGS, replicas=3) as built:
        yield built


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, models: Path) -> Iterator[ServiceProcess]:
    """The single process of proof A, started before the cluster so both load at once."""
    process = reference_process(tmp_path_factory.mktemp("reference"), models, SETTINGS)
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def ha(the_cluster: Cluster) -> Cluster:
    """The cluster whole again (a test before may have killed a replica or a server), with
    one leader."""
    the_cluster.heal()
    wait_until(lambda: len(the_cluster.leaders()) == 1, timeout=FAILOVER_BOUND_S)
    return the_cluster


def threshold_of(replica: Replica, model: str) -> tuple[float, int]:
    listed = httpx.get(f"{replica.url}/v1/models", timeout=5).json()["models"]
    (entry,) = [m for m in listed if m["name"] == model]
    return float(entry["threshold"]["current"]), int(entry["threshold"]["version"])


def fresh(name: str) -> str:
    """A name no earlier run on this cluster used (streams, reading and label ids): each
    test starts on new streams, whatever ran before it."""
    return f"{name}-{uuid.uuid4().hex[:8]}"


def value_for_error(error: float) -> float:
    """The sensor-0 value a window-1 test model scores ``error`` for (mean of squares)."""
    return math.sqrt(4.0 * error)


# --- A: equivalence ---------------------------------------------------------------------


def equivalence_traffic(seed: int, count: int, prefix: str) -> list[dict[str, Any]]:
    """Scoring bodies over several streams and both models: calm readings, then fault
    spells on sensor 0 that raise alerts and cool down; single readings and batches;
    the windowed model warms up on each new stream. Most readings carry an id and a
    timestamp; some carry neither, so the service generates their ids."""
    rng = np.random.default_rng(seed)
    streams = [f"{prefix}-line-{i}" for i in range(4)]
    clock = 1_767_600_000.0
    bodies: list[dict[str, Any]] = []
    for i in range(count):
        stream = streams[int(rng.integers(len(streams)))]
        model = EQUAL_MODELS[int(rng.integers(len(EQUAL_MODELS)))]
        size = 1 if rng.random() < 0.6 else int(rng.choice([3, 8, 20]))
        values = rng.normal(0, 0.5, size=(size, 4))
        if (i // 10) % 3 == 2:  # every third spell of ten requests is a fault
            values[:, 0] += 3.0
        rows = values.round(4).tolist()
        readings: list[Any] = []
        anonymous = rng.random() < 0.15
        for row in rows:
            clock += 1.0
            if anonymous:
                readings.append(row)
            else:
                readings.append(
                    {"values": row, "reading_id": f"{stream}-{clock:.0f}", "timestamp": clock}
                )
        body: dict[str, Any] = {"stream_id": stream, "model": model}
        if size == 1:
            body["reading"] = readings[0]
        else:
            body["readings"] = readings
        bodies.append(body)
    return bodies


def without_generated_ids(reply: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """The reply with the ids the service generated taken out: a process makes them from
    its own random token and a counter, so two processes never agree on them, by design.
    Ids the client sent, and every other field, are compared."""
    anonymous = isinstance(body.get("reading", body.get("readings", [None])[0]), list)
    if not anonymous:
        return reply
    trimmed = dict(reply)
    for key in ("result", "results"):
        if trimmed.get(key) is None:
            continue
        results = trimmed[key] if key == "results" else [trimmed[key]]
        stripped = []
        for result in results:
            assert result["reading_id"].startswith("r"), result["reading_id"]
            stripped.append({k: v for k, v in result.items() if k != "reading_id"})
        trimmed[key] = stripped if key == "results" else stripped[0]
    return trimmed


def test_a_streams_spread_over_replicas_answer_as_one_process(
    reference: ServiceProcess, ha: Cluster
) -> None:
    reference.wait_ready()
    bodies = equivalence_traffic(seed=14, count=150, prefix=fresh("eq"))
    before = [r.readings_scored() for r in ha.replicas]
    expected: list[Any] = []
    got: list[Any] = []
    with (
        httpx.Client(base_url=reference.url, timeout=30) as one,
        httpx.Client(base_url=ha.url, timeout=30) as spread,
    ):
        for body in bodies:
            mine, theirs = one.post("/v1/score", json=body), spread.post("/v1/score", json=body)
            assert mine.status_code == 200, mine.text
            assert theirs.status_code == 200, theirs.text
            expected.append(without_generated_ids(mine.json(), body))
            got.append(without_generated_ids(theirs.json(), body))
        streams = sorted({b["stream_id"] for b in bodies})
        shown_one = [
            one.get(f"/v1/streams/{s}", params={"model": m}).json()
            for s in streams
            for m in EQUAL_MODELS
        ]
        shown_by = [
            [
                httpx.get(f"{r.url}/v1/streams/{s}", params={"model": m}, timeout=5).json()
                for s in streams
                for m in EQUAL_MODELS
            ]
            for r in ha.replicas
        ]
    for i, (mine, theirs) in enumerate(zip(expected, got, strict=True)):
        assert theirs == mine, (i, bodies[i])
    # Every replica took part, and between them scored each reading once.
    results = [
        result
        for reply in expected
        for result in ([reply["result"]] if reply.get("result") else reply["results"])
    ]
    scored = [r.readings_scored() - b for r, b in zip(ha.replicas, before, strict=True)]
    assert all(count > 0 for count in scored), scored
    assert sum(scored) == sum(result["status"] == "scored" for result in results)
    # The traffic exercised what it claims to: warm-up, alerts raised and cooling down.
    states = {result["alert_state"] for result in results}
    assert {"warming_up", "alert", "cooldown", "normal"} <= states, states
    assert sum(r.get("alerts_raised") or 0 for r in expected) > 0
    # Each replica shows each stream as the single process holds it.
    fields = ("alert_state", "smoothed_score", "readings_buffered", "window")
    for shown in shown_by:
        for mine, theirs in zip(shown_one, shown, strict=True):
            assert {f: theirs[f] for f in fields} == {f: mine[f] for f in fields}


# --- B: a label across replicas, one recalibration, the version everywhere ---------------


def serve_times(
    replicas: list[Replica], model: str, above: int, timeout: float
) -> dict[str, tuple[float, int]]:
    """Wall-clock time at which each replica first served a version above ``above``, and
    that version; each replica watched by its own thread, so none waits for the others."""

    def watch(replica: Replica) -> tuple[float, int] | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            version = replica.served_version(model)
            if version > above:
                return time.time(), version
            time.sleep(0.005)
        return None

    with ThreadPoolExecutor(len(replicas)) as pool:
        seen = dict(zip([r.name for r in replicas], pool.map(watch, replicas), strict=True))
    return {name: found for name, found in seen.items() if found is not None}


def test_b_a_label_through_one_replica_recalibrates_once_and_reaches_all(ha: Cluster) -> None:
    wait_until(lambda: len(ha.leaders()) == 1, timeout=FAILOVER_BOUND_S)
    (b,) = ha.leaders()
    a = next(r for r in ha.replicas if r is not b)
    value, version = threshold_of(b, CALIBRATED)
    (last_run,) = ha.sql("SELECT coalesce(max(id), 0) FROM recalibration_runs")[0]
    # Readings scored through the leader, whose retained readings measure how often normal
    # operation exceeds the threshold (labels picked by id do not), and labelled normal
    # through another replica: all just above the threshold, which they show too low; a
    # candidate about 15% higher, within the automatic step, so the run applies it.
    errors = np.linspace(1.02, 1.15, LABELS_PER_RUN) * value
    name = fresh("proof-b")
    ids = [f"{name}-{i}" for i in range(LABELS_PER_RUN)]
    scored = httpx.post(
        f"{b.url}/v1/score",
        json={
            "stream_id": name,
            "model": CALIBRATED,
            "readings": [
                {"values": [value_for_error(e), 0, 0, 0], "reading_id": i}
                for e, i in zip(errors, ids, strict=True)
            ],
        },
        timeout=30,
    )
    assert scored.status_code == 200, scored.text
    labelled = httpx.post(
        f"{a.url}/v1/feedback",
        json={"label": "normal", "reading_ids": ids, "client_label_id": name},
        headers=AUTH,
        timeout=30,
    )
    assert labelled.status_code == 201, labelled.text
    labels = labelled.json()["labels"]
    assert [x["reading_id"] for x in labels] == ids
    assert {x["stream_id"] for x in labels} == {name}
    assert [x["error"] for x in labels] == pytest.approx(errors.tolist(), rel=1e-5)

    seen = serve_times(ha.replicas, CALIBRATED, version, timeout=60)
    assert set(seen) == {r.name for r in ha.replicas}, f"not served everywhere: {seen}"
    assert {v for _, v in seen.values()} == {version + 1}
    # Quiet for a few poll intervals: a second run would have shown by now.
    time.sleep(8 * STORE_POLL_S)
    stored = ha.sql(
        "SELECT count(*) FROM labels l JOIN submissions s ON s.id = l.submission_id"
        " WHERE s.client_label_id = %s AND l.label = 'normal' AND l.model = %s",
        name,
        CALIBRATED,
    )
    assert stored == [(LABELS_PER_RUN,)]
    runs = ha.sql(
        "SELECT trigger, outcome, threshold_version, n_samples FROM recalibration_runs"
        " WHERE model = %s AND id > %s",
        CALIBRATED,
        last_run,
    )
    assert runs == [("labels", "applied", version + 1, LABELS_PER_RUN)], runs
    (created_at,) = ha.sql(
        "SELECT created_at FROM threshold_versions WHERE model = %s AND version = %s",
        CALIBRATED,
        version + 1,
    )[0]
    assert ha.sql("SELECT max(version) FROM threshold_versions WHERE model = %s", CALIBRATED) == [
        (version + 1,)
    ]
    assert len(ha.leaders()) == 1
    took = {name: round(at - created_at, 3) for name, (at, _) in seen.items()}
    print(f"proof B: version {version + 1} served after (s from its commit): {took}")
    assert max(took.values()) <= PROPAGATION_BOUND_S, took


# --- C: kill -9 the leader under load ----------------------------------------------------


def labelling_step(name: str, round_: int, threshold: float) -> Any:
    """A step of mixed load: score five readings of one of three streams through nginx,
    then label them normal (errors a little above this round's threshold at most, so the
    leader's runs move it) under a client label id."""
    rng = np.random.default_rng(round_)

    def step(client: httpx.Client, i: int) -> list[Outcome]:
        ids = [f"{name}-{i}-{j}" for j in range(5)]
        errors = rng.uniform(0.7, 1.0, size=5) * threshold * 1.08
        scored = send(
            client,
            "score",
            "POST",
            "/v1/score",
            json={
                "stream_id": f"{name}-{i % 3}",
                "readings": [
                    {"values": [value_for_error(e), 0, 0, 0], "reading_id": r}
                    for e, r in zip(errors, ids, strict=True)
                ],
            },
        )
        if scored.status != 200:
            return [scored]
        label = send(
            client,
            "label",
            "POST",
            "/v1/feedback",
            json={"label": "normal", "reading_ids": ids, "client_label_id": f"{name}-{i}"},
            headers=AUTH,
        )
        return [scored, label]

    return step


def wait_for_steps(load: LoadLoop, count: int, timeout: float = 60) -> None:
    wait_until(lambda: load.steps >= count, timeout=timeout, interval=0.02)


def cut_off(outcome: Outcome, kill_began: float, kill_ended: float) -> bool:
    """The answer broke off mid-body while the replica sending it was being killed."""
    return (
        outcome.status is None
        and "without sending complete message body" in (outcome.error or "")
        and outcome.started <= kill_ended
        and outcome.finished >= kill_began
    )


def nginx_fail_timeout_s() -> float:
    """How long nginx keeps a replica that failed out of its rotation (deploy/nginx/), even
    once it answers again."""
    (params,) = set(support.upstream_params())
    match = re.search(r"fail_timeout=(\d+)s", params)
    assert match is not None, params
    return float(match.group(1))


def test_c_the_leader_killed_under_load_loses_no_label_and_another_leads(ha: Cluster) -> None:
    (versions_before,) = ha.sql(
        "SELECT count(*) FROM threshold_versions WHERE model = %s", TEST_MODEL
    )[0]
    acknowledged: dict[str, int] = {}
    failovers: list[float] = []
    fail_timeout = nginx_fail_timeout_s()
    killed_at = -math.inf
    for round_ in range(ROUNDS):
        ha.heal()
        # One failure at a time: the replica killed in the round before stays out of nginx's
        # rotation for fail_timeout after it is back, so a kill sooner than that would leave
        # nginx no replica it believes alive (502 no-replica for every request until then).
        time.sleep(max(0.0, killed_at + fail_timeout + 0.5 - time.monotonic()))
        wait_until(lambda: len(ha.leaders()) == 1, timeout=FAILOVER_BOUND_S)
        (leader,) = ha.leaders()
        threshold, _ = threshold_of(leader, TEST_MODEL)
        with LoadLoop(
            ha.url, labelling_step(fresh(f"c{round_}"), round_, threshold), limit=2000
        ) as load:
            wait_for_steps(load, 2 * LABELS_PER_RUN // 5)  # a run or so before the kill
            killed_at, kill_began = time.monotonic(), time.time()
            leader.kill()
            kill_ended = time.time()
            wait_until(lambda: len(ha.leaders()) == 1, timeout=FAILOVER_BOUND_S, interval=0.01)
            failovers.append(time.monotonic() - killed_at)
            # Started again at once, loading while the load goes on; it rejoins the
            # rotation once ready (before, its refused connections pass to the others).
            leader.restart()
            after_kill = load.steps
            wait_for_steps(load, after_kill + 2 * LABELS_PER_RUN // 5)
        outcomes = load.outcomes
        # Only the request in flight on the killed replica may be lost (nginx does not send
        # a POST twice): a 502, or an answer cut off as the replica died under it (nginx had
        # passed its headers on); every other one was answered.
        lost = [o for o in outcomes if o.status == 502 or cut_off(o, kill_began, kill_ended)]
        answered = [o for o in outcomes if o not in lost]
        assert len(lost) <= 1, lost
        assert all(o.status in (200, 201) for o in answered), [
            (o.kind, o.status, o.body, o.error) for o in answered if o.status not in (200, 201)
        ][:3]
        for o in outcomes:
            if o.kind == "label" and o.status == 201:
                acknowledged[o.body["client_label_id"]] = o.body["count"]
        print(
            f"proof C round {round_}: {leader.name} killed, another led after "
            f"{failovers[-1]:.3f} s; {len(outcomes)} requests, {len(lost)} lost in flight"
        )
    ha.heal()

    stored = dict(
        ha.sql(
            "SELECT s.client_label_id, count(l.id) FROM submissions s"
            " JOIN labels l ON l.submission_id = s.id GROUP BY s.client_label_id"
        )
    )
    missing = {k: v for k, v in acknowledged.items() if stored.get(k) != v}
    assert not missing, f"acknowledged labels not in PostgreSQL: {missing}"
    assert len(acknowledged) >= ROUNDS * 4 * LABELS_PER_RUN // 5 // 2

    versions = [
        v
        for (v,) in ha.sql(
            "SELECT version FROM threshold_versions WHERE model = %s ORDER BY version", TEST_MODEL
        )
    ]
    assert versions == list(range(1, len(versions) + 1)), versions
    assert ha.sql("SELECT version FROM threshold_heads WHERE model = %s", TEST_MODEL) == [
        (len(versions),)
    ]
    assert len(versions) > versions_before, "no version was written under load: proves nothing"
    applied = [
        v
        for (v,) in ha.sql(
            "SELECT threshold_version FROM recalibration_runs"
            " WHERE model = %s AND threshold_version IS NOT NULL",
            TEST_MODEL,
        )
    ]
    assert len(applied) == len(set(applied)) and set(applied) <= set(versions)
    wait_until(
        lambda: {r.served_version(TEST_MODEL) for r in ha.replicas} == {versions[-1]},
        timeout=PROPAGATION_BOUND_S + 5 * STORE_POLL_S,
    )
    print(
        f"proof C: failover per round (s): {[round(f, 3) for f in failovers]}; "
        f"versions {versions_before} -> {len(versions)}; {len(acknowledged)} labels acknowledged"
    )


# --- D: Redis, then PostgreSQL, stopped and started under load ---------------------------


def outage_step(client: httpx.Client, i: int) -> list[Outcome]:
    """A reading scored through nginx, and a label that carries its readings (it needs the
    store, not Redis)."""
    value = 0.1 * (i % 7)
    scored = send(
        client,
        "score",
        "POST",
        "/v1/score",
        json={"stream_id": f"outage-{i % 4}", "model": OUTAGE, "reading": [value, 0, 0, 0]},
    )
    label = send(
        client,
        "label",
        "POST",
        "/v1/feedback",
        json={
            "label": "normal",
            "readings": {
                "values": [[value, 0, 0, 0]],
                "stream_id": f"outage-{i % 4}",
                "model": OUTAGE,
            },
            "client_label_id": f"d-{time.time_ns()}",
        },
        headers=AUTH,
    )
    return [scored, label]


def during(outcomes: list[Outcome], kind: str, start: float, end: float) -> list[Outcome]:
    """The outcomes of ``kind`` whose whole request fell inside [start, end]."""
    return [o for o in outcomes if o.kind == kind and o.started >= start and o.finished <= end]


def assert_problem(outcome: Outcome, status: int, slug: str) -> None:
    assert outcome.status == status, (outcome.status, outcome.body)
    assert outcome.headers["content-type"].startswith("application/problem+json")
    assert outcome.body["type"].endswith(f"/{slug}"), outcome.body


def assert_answered(outcomes: list[Outcome]) -> None:
    """Every request got an HTTP answer, and none a 500 or a balancer's 502/504."""
    bad = [
        (o.kind, o.status, o.error or o.body)
        for o in outcomes
        if o.status is None or o.status >= 500 and o.status != 503
    ]
    assert not bad, bad[:3]


def test_d_redis_then_postgres_down_and_back_under_load(ha: Cluster) -> None:
    # Redis.
    with LoadLoop(ha.url, outage_step, limit=5000) as load:
        wait_for_steps(load, 10)
        ha.redis.stop()
        down = time.time()
        wait_until(lambda: all(r.readiness()[0] == 503 for r in ha.replicas), timeout=30)
        for replica in ha.replicas:
            status, body = replica.readiness()
            assert status == 503 and "Redis" in body["checks"]["stream_state"], body
            assert "stream_state" in body["detail"]
        # A label by reading id needs the readings Redis keeps: refused the same way.
        by_id = httpx.post(
            f"{ha.url}/v1/feedback",
            json={"label": "normal", "reading_ids": ["outage-reading"]},
            headers=AUTH,
            timeout=30,
        )
        assert by_id.status_code == 503, by_id.text
        assert by_id.json()["type"].endswith("/stream-state-unavailable")
        wait_until(lambda: len(during(load.outcomes, "score", down, time.time())) >= 10, timeout=30)
        up = time.time()
        ha.redis.start()
        back = wait_until(lambda: all(r.readiness()[0] == 200 for r in ha.replicas), timeout=30)
        since = len(load.outcomes)
        wait_for_steps(load, load.steps + 10)
    outcomes = load.outcomes
    assert_answered(outcomes)
    scores_down = during(outcomes, "score", down, up)
    assert scores_down
    for outcome in scores_down:
        assert_problem(outcome, 503, "stream-state-unavailable")
        assert "Redis" in outcome.body["detail"]
    # Labels that carry their readings need the store only: accepted throughout.
    assert {o.status for o in during(outcomes, "label", down, up)} == {201}
    after = outcomes[since:]
    assert {o.status for o in after} == {200, 201}, [(o.kind, o.status) for o in after][:5]
    print(f"proof D: Redis back, every replica ready again after {back:.3f} s")

    # PostgreSQL.
    value, version = threshold_of(ha.replicas[0], OUTAGE)
    with LoadLoop(ha.url, outage_step, limit=5000) as load:
        wait_for_steps(load, 10)
        ha.postgres.stop()
        down = time.time()
        admin = httpx.post(
            f"{ha.url}/v1/admin/thresholds/{OUTAGE}",
            json={"value": value * 1.05, "reason": "during the outage"},
            headers=AUTH,
            timeout=30,
        )
        assert admin.status_code == 503, admin.text
        assert admin.json()["type"].endswith("/store-unavailable")
        for replica in ha.replicas:
            status, body = replica.readiness()
            assert status == 200 and "unreachable" in body["checks"]["store"], body
        wait_until(lambda: not ha.leaders(), timeout=FAILOVER_BOUND_S)
        wait_until(lambda: len(during(load.outcomes, "label", down, time.time())) >= 10, timeout=30)
        up = time.time()
        ha.postgres.start()
        back = wait_until(
            lambda: any(
                o.kind == "label" and o.status == 201 and o.started > up
                for o in load.outcomes[-10:]
            ),
            timeout=30,
        )
        led = wait_until(lambda: len(ha.leaders()) == 1, timeout=FAILOVER_BOUND_S)
        since = len(load.outcomes)
        wait_for_steps(load, load.steps + 10)
    outcomes = load.outcomes
    assert_answered(outcomes)
    labels_down = during(outcomes, "label", down, up)
    assert labels_down
    for outcome in labels_down:
        assert_problem(outcome, 503, "store-unavailable")
        assert "retry-after" in outcome.headers
    scores_down = during(outcomes, "score", down, up)
    assert scores_down
    assert {(o.status, o.body["threshold_version"]) for o in scores_down} == {(200, version)}
    after = outcomes[since:]
    assert {o.status for o in after} == {200, 201}, [(o.kind, o.status) for o in after][:5]
    for replica in ha.replicas:
        assert replica.readiness()[1]["checks"]["store"] == "ok"
    # A version written after the outage reaches every replica.
    changed = httpx.post(
        f"{ha.replicas[0].url}/v1/admin/thresholds/{OUTAGE}",
        json={"value": value * 1.05, "reason": "after the outage"},
        headers=AUTH,
        timeout=30,
    )
    assert changed.status_code == 201, changed.text
    new = changed.json()["version"]
    spread = wait_until(
        lambda: {r.served_version(OUTAGE) for r in ha.replicas} == {new},
        timeout=PROPAGATION_BOUND_S,
        interval=0.01,
    )
    print(
        f"proof D: PostgreSQL back, labels accepted after {back:.3f} s, one leader after "
        f"{led:.3f} s more, version {new} on every replica after {spread:.3f} s"
    )
