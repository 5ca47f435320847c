"""Replicas of ``python -m service`` on one PostgreSQL store (a throw-away server the test
starts): a threshold set through one replica is served by the other by notification, and
a maintenance window set or ended through one applies or stops applying on the other;
exactly one replica leads recalibration, and another takes over when the leader is killed;
with the server stopped, labels and admin changes get a 503 problem body while scoring goes
on, and everything recovers when it is back, without a restart.

Measured times are printed (``-s``), never asserted: the waits are generous bounds that only
fail when the mechanism is missing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import TEST_MODEL
from postgres_support import PostgresServer, postgres_server, wait_until
from service_process import ServiceProcess

pytestmark = pytest.mark.integration

KEY = "replica-test-key-0a1b2c3d4e5f66778899"
HEADERS = {"Authorization": f"Bearer {KEY}"}


def server_env(url: str, poll_s: float) -> dict[str, str]:
    return {
        "ANOMALY_STORE_URL": url,
        "ANOMALY_STORE_POLL_S": str(poll_s),
        "ANOMALY_API_KEYS": json.dumps(
            [{"name": "replica-test", "scopes": ["feedback", "admin"], "key": KEY}]
        ),
        "ANOMALY_RECALIBRATION_INTERVAL_S": "3600",
    }


@pytest.fixture
def started() -> Iterator[list[ServiceProcess]]:
    processes: list[ServiceProcess] = []
    yield processes
    for process in processes:
        process.stop()


def start(
    tmp_path: Path, models: Path, env: dict[str, str], processes: list[ServiceProcess]
) -> ServiceProcess:
    process = ServiceProcess(
        models, tmp_path / "unused.sqlite3", tmp_path / f"replica-{len(processes)}.log", env
    )
    processes.append(process)
    process.wait_ready()
    return process


def leads(process: ServiceProcess) -> bool:
    text = httpx.get(f"{process.url}/metrics", timeout=5).text
    match = re.search(r"^anomaly_recalibration_leader (\S+)$", text, flags=re.MULTILINE)
    assert match, "no leader gauge in /metrics"
    return float(match.group(1)) == 1.0


def served_version(process: ServiceProcess) -> int:
    models = httpx.get(f"{process.url}/v1/models", timeout=5).json()["models"]
    (model,) = [m for m in models if m["name"] == TEST_MODEL]
    version: int = model["threshold"]["version"]
    return version


def readiness(process: ServiceProcess) -> tuple[int, dict[str, Any]]:
    response = httpx.get(f"{process.url}/readyz", timeout=5)
    body: dict[str, Any] = response.json()
    return response.status_code, body


def test_thresholds_reach_the_other_replica_by_notification(
    tmp_path: Path, write_test_artifact: Any, postgres_url: str, started: list[ServiceProcess]
) -> None:
    """Polling is set to a minute: a version seen within the wait came by notification."""
    models = tmp_path / "models"
    write_test_artifact(models)
    env = server_env(postgres_url, poll_s=60)
    a, b = start(tmp_path, models, env, started), start(tmp_path, models, env, started)
    assert served_version(a) == served_version(b) == 1
    for round_ in range(3):
        response = httpx.post(
            f"{a.url}/v1/admin/thresholds/{TEST_MODEL}",
            json={"value": 1.5 + round_, "reason": f"round {round_}"},
            headers=HEADERS,
        )
        assert response.status_code == 201, response.text
        version = response.json()["version"]
        took = wait_until(lambda v=version: served_version(b) == v, timeout=10)
        print(f"version {version} set on A, served by B after {took:.3f} s")
        assert served_version(a) == version


def test_maintenance_windows_reach_the_other_replica_by_notification(
    tmp_path: Path, write_test_artifact: Any, postgres_url: str, started: list[ServiceProcess]
) -> None:
    """A window set and ended through one replica applies, then stops applying, to the
    readings the other scores; polling is set to a minute, so it came by notification."""
    models = tmp_path / "models"
    write_test_artifact(models)
    env = server_env(postgres_url, poll_s=60)
    a, b = start(tmp_path, models, env, started), start(tmp_path, models, env, started)

    def suppressed_on_b() -> int | None:
        reading = {"stream_id": "line-a.pump", "readings": [[3.0, 3.0, 3.0, 3.0]]}
        scored = httpx.post(f"{b.url}/v1/score", json=reading, timeout=5)
        assert scored.status_code == 200, scored.text
        window: int | None = scored.json()["results"][0].get("suppressed_by_window")
        return window

    assert suppressed_on_b() is None
    created = httpx.post(
        f"{a.url}/v1/maintenance-windows",
        json={"stream_prefix": "line-a.", "modes": ["suppress_alerts"], "reason": "overhaul"},
        headers=HEADERS,
        timeout=5,
    )
    assert created.status_code == 201, created.text
    window_id = created.json()["id"]
    took = wait_until(lambda: suppressed_on_b() == window_id, timeout=10)
    print(f"window {window_id} set on A, applied by B after {took:.3f} s")
    ended = httpx.post(
        f"{a.url}/v1/maintenance-windows/{window_id}/end",
        json={"reason": "done"},
        headers=HEADERS,
        timeout=5,
    )
    assert ended.status_code == 200, ended.text
    took = wait_until(lambda: suppressed_on_b() is None, timeout=10)
    print(f"window {window_id} ended on A, no longer applied by B after {took:.3f} s")


def test_one_leader_and_a_takeover_when_it_is_killed(
    tmp_path: Path, write_test_artifact: Any, postgres_url: str, started: list[ServiceProcess]
) -> None:
    models = tmp_path / "models"
    write_test_artifact(models)
    env = server_env(postgres_url, poll_s=0.5)
    replicas = [start(tmp_path, models, env, started) for _ in range(2)]
    wait_until(lambda: sum(leads(r) for r in replicas) == 1, timeout=15)
    for _ in range(5):  # and it stays one
        assert sum(leads(r) for r in replicas) == 1
        time.sleep(0.2)
    leader = next(r for r in replicas if leads(r))
    follower = next(r for r in replicas if r is not leader)
    assert readiness(leader)[1]["details"]["recalibration_leader"] == "this replica"
    assert readiness(follower)[1]["details"]["recalibration_leader"] == "another replica"
    leader.kill()
    took = wait_until(lambda: leads(follower), timeout=30)
    print(f"leader killed: the other replica led after {took:.3f} s")
    assert readiness(follower)[1]["details"]["recalibration_leader"] == "this replica"


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own: it is stopped and started under the service."""
    with postgres_server() as server:
        yield server


def test_the_store_down_refuses_labels_scoring_goes_on_and_it_recovers(
    tmp_path: Path, write_test_artifact: Any, own_postgres: PostgresServer,
    started: list[ServiceProcess],
) -> None:  # fmt: skip
    models = tmp_path / "models"
    write_test_artifact(models)
    replica = start(
        tmp_path, models, server_env(own_postgres.create_database(), poll_s=0.5), started
    )
    wait_until(lambda: leads(replica), timeout=15)
    reading = {"stream_id": "d", "readings": [[0.1, 0.2, 0.3, 0.4]]}
    label = {"label": "normal", "readings": {"values": [[0.1, 0.2, 0.3, 0.4]], "stream_id": "d"}}
    with httpx.Client(base_url=replica.url, headers=HEADERS, timeout=15) as client:
        assert client.post("/v1/feedback", json=label).status_code == 201
        own_postgres.stop()

        assert_store_refuses_writes(client, label)

        scored = client.post("/v1/score", json=reading)
        assert scored.status_code == 200, scored.text
        status, body = readiness(replica)
        assert status == 200 and body["status"] == "ready"
        assert "unreachable" in body["checks"]["store"]
        wait_until(lambda: not leads(replica), timeout=15)
        # /readyz answers anyone: the server's address and port are in the log, not here
        # (once a reconnection was refused: the first error, a dropped connection, has none)
        log = tmp_path / "replica-0.log"
        port = str(own_postgres.port)
        lost = "link to the shared store lost"
        wait_until(lambda: log.read_text().count(lost) >= 2, timeout=15)
        status, body = readiness(replica)
        assert body["details"]["recalibration_leader"].startswith("unknown: no connection")
        assert port not in json.dumps(body), body

        own_postgres.start()
        took = wait_until(
            lambda: client.post("/v1/feedback", json=label).status_code == 201, timeout=30
        )
        print(f"server back: labels accepted again after {took:.3f} s")
        wait_until(lambda: leads(replica), timeout=15)
        assert readiness(replica)[1]["checks"]["store"] == "ok"
        changed = client.post(
            f"/v1/admin/thresholds/{TEST_MODEL}", json={"value": 2.0, "reason": "by hand"}
        )
        assert changed.status_code == 201, changed.text


def test_a_replica_starts_with_the_store_down_and_catches_up_when_it_is_back(
    tmp_path: Path, write_test_artifact: Any, own_postgres: PostgresServer,
    started: list[ServiceProcess],
) -> None:  # fmt: skip
    """Started while PostgreSQL is down (its database not even migrated yet): it scores on
    the manifest's threshold as version 0 (none stored), refuses labels and admin with a
    503, is ready with the store named; once the server is back the schema is upgraded,
    the manifest's threshold becomes version 1 and labels are taken, without a restart."""
    models = tmp_path / "models"
    write_test_artifact(models)
    url = own_postgres.create_database()
    own_postgres.stop()
    replica = start(tmp_path, models, server_env(url, poll_s=0.5), started)
    reading = {"stream_id": "d", "readings": [[0.1, 0.2, 0.3, 0.4]]}
    label = {"label": "normal", "readings": {"values": [[0.1, 0.2, 0.3, 0.4]], "stream_id": "d"}}
    with httpx.Client(base_url=replica.url, headers=HEADERS, timeout=15) as client:
        scored = client.post("/v1/score", json=reading)
        assert scored.status_code == 200, scored.text
        (result,) = scored.json()["results"]
        assert result["threshold_version"] == 0
        assert result["threshold"] == pytest.approx(1.0)  # the test artifact's manifest
        assert_store_refuses_writes(client, label)
        status, body = readiness(replica)
        assert status == 200 and body["status"] == "ready"
        assert "unreachable" in body["checks"]["store"]
        assert not leads(replica)

        own_postgres.start()
        took = wait_until(
            lambda: client.post("/v1/feedback", json=label).status_code == 201, timeout=30
        )
        print(f"server back: labels accepted after {took:.3f} s")
        wait_until(lambda: served_version(replica) == 1, timeout=15)
        wait_until(lambda: leads(replica), timeout=15)
        assert readiness(replica)[1]["checks"]["store"] == "ok"
        after = client.post("/v1/score", json=reading).json()["results"][0]
        assert after["threshold_version"] == 1
        assert after["threshold"] == pytest.approx(1.0)


def assert_store_refuses_writes(client: httpx.Client, label: dict[str, Any]) -> None:
    """A label and a hand-set threshold both answer 503 store-unavailable as a problem body."""
    refused = client.post("/v1/feedback", json=label)
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["type"].endswith("/store-unavailable")
    admin = client.post(
        f"/v1/admin/thresholds/{TEST_MODEL}", json={"value": 2.0, "reason": "by hand"}
    )
    assert admin.status_code == 503 and admin.json()["type"].endswith("/store-unavailable")
