"""deploy/nginx/ run by the real nginx (Debian's package) in front of real service processes
(``python -m service`` in the embedded default, each on its own SQLite store): requests take
turns over the replicas, the service's problem bodies reach the client byte for byte, nginx's
own refusals are problem bodies too, and a replica killed with SIGKILL is skipped without a
failed request. Only the upstream lines, the listen line and the /tmp paths differ from the
files the compose profile mounts (tests/deploy/nginx_support.py)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from balancer_support import Balancers, support
from conftest import build_test_artifact
from prometheus_client.parser import text_string_to_metric_families
from service_process import ServiceProcess, free_port

from service.errors import PROBLEM_CONTENT_TYPE, PayloadTooLarge

pytestmark = pytest.mark.integration


KEY = "balancer-test-key-0a1b2c3d4e5f60718293"
# Small enough that a test body crosses the service's limit while nginx's (16 MiB) lets it by.
SERVICE_MAX_BODY = 2048
REPLICA_ENV = {
    "ANOMALY_API_KEYS": json.dumps([{"name": "balancer", "scopes": ["feedback"], "key": KEY}]),
    "ANOMALY_MAX_BODY_BYTES": str(SERVICE_MAX_BODY),
    "ANOMALY_RECALIBRATION_ENABLED": "false",
}


@pytest.fixture(scope="module")
def nginx_binary() -> str:
    found: str | None = support.find_nginx()
    if found is None:
        pytest.skip(support.MISSING)
    return found


def _replica(tmp: Path, name: str) -> ServiceProcess:
    return ServiceProcess(tmp / "models", tmp / f"{name}.sqlite3", tmp / f"{name}.log", REPLICA_ENV)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("replicas")
    build_test_artifact(tmp / "models")
    return tmp


@pytest.fixture(scope="module")
def replicas(models: Path, nginx_binary: str) -> Iterator[list[ServiceProcess]]:
    pair = [_replica(models, "a"), _replica(models, "b")]
    try:
        for replica in pair:
            replica.wait_ready()
        yield pair
    finally:
        for replica in pair:
            replica.stop()


@pytest.fixture
def balancers(nginx_binary: str) -> Iterator[Balancers]:
    started = Balancers(nginx_binary)
    try:
        yield started
    finally:
        started.stop_all()


def _address(replica: ServiceProcess) -> str:
    return f"127.0.0.1:{replica.port}"


def _readings_scored(replica: ServiceProcess) -> float:
    text = httpx.get(f"{replica.url}/metrics", timeout=5).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "anomaly_readings_scored"
        for sample in family.samples
        if sample.name == "anomaly_readings_scored_total"
    )


def _score(client: httpx.Client, stream: str, values: list[float]) -> httpx.Response:
    return client.post("/v1/score", json={"stream_id": stream, "reading": values})


def test_requests_take_turns_over_both_replicas(
    replicas: list[ServiceProcess], balancers: Balancers
) -> None:
    balancer = balancers.start([_address(r) for r in replicas])
    before = [_readings_scored(r) for r in replicas]
    with httpx.Client(base_url=balancer.url, timeout=10) as client:
        for i in range(10):
            response = _score(client, f"rr-{i}", [0.1 * i, 0.2, -0.1, 0.0])
            assert response.status_code == 200, response.text
            assert response.json()["result"]["status"] == "scored"
    scored = [_readings_scored(r) - b for r, b in zip(replicas, before, strict=True)]
    # Each replica counts what it scored itself: both took part, and nothing was lost.
    assert all(count > 0 for count in scored), scored
    assert sum(scored) == 10
    logged = {_address(r) for r in replicas}
    upstreams = {m for line in balancer.log_lines() for m in re.findall(r"upstream=(\S+)", line)}
    assert logged <= upstreams


def _request(base: str, case: str) -> httpx.Response:
    with httpx.Client(base_url=base, timeout=10) as client:
        if case == "413":
            return _score(client, "big", [0.5] * (SERVICE_MAX_BODY // 4))
        if case == "401":
            return client.post("/v1/feedback", json={"label": "normal", "reading_ids": ["x"]})
        assert case == "422"
        return _score(client, "short", [0.1, 0.2])


@pytest.mark.parametrize("case", ["413", "401", "422"])
def test_the_service_s_problem_bodies_pass_through_intact(
    replicas: list[ServiceProcess], balancers: Balancers, case: str
) -> None:
    balancer = balancers.start([_address(r) for r in replicas])
    direct = _request(replicas[0].url, case)
    assert direct.status_code == int(case)
    assert direct.headers["content-type"] == PROBLEM_CONTENT_TYPE
    # Twice, so each replica answers once (the rotation alternates).
    for _ in range(2):
        proxied = _request(balancer.url, case)
        assert proxied.status_code == direct.status_code
        assert proxied.headers["content-type"] == direct.headers["content-type"]
        assert proxied.content == direct.content
        assert proxied.headers.get("www-authenticate") == direct.headers.get("www-authenticate")
    if case == "401":
        assert direct.headers["www-authenticate"].startswith("Bearer")


def _raw_response(url: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request over a plain socket: nginx refuses an oversized Content-Length before
    any body is sent, which an HTTP client would race by sending the body."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in header_lines)}
    return int(status_line.split()[1]), headers, body


def _assert_problem(status: int, headers: dict[str, str], body: bytes, expected: int) -> Any:
    assert status == expected
    assert headers["content-type"] == PROBLEM_CONTENT_TYPE
    problem = json.loads(body)
    assert problem["status"] == expected
    assert problem["type"].startswith("https://sensor-anomaly-service.dev/problems/")
    return problem


def test_nginx_s_own_refusals_are_problem_bodies(nginx_binary: str, balancers: Balancers) -> None:
    # No replica listens: nothing is reached, nothing is needed from the service.
    balancer = balancers.start([f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"])
    limit = 16 * 1024 * 1024
    status, headers, body = _raw_response(
        balancer.url,
        b"POST /v1/score HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {limit + 1}\r\nConnection: close\r\n\r\n".encode(),
    )
    problem = _assert_problem(status, headers, body, 413)
    assert problem["type"].endswith("/" + PayloadTooLarge.slug)
    assert problem["title"] == PayloadTooLarge.title
    response = httpx.get(f"{balancer.url}/readyz", timeout=10)
    _assert_problem(response.status_code, dict(response.headers), response.content, 502)
    response = httpx.get(f"{balancer.url}/metrics", timeout=10)
    problem = _assert_problem(response.status_code, dict(response.headers), response.content, 404)
    assert "replica" in problem["detail"]


def test_a_killed_replica_is_skipped_and_no_request_fails(
    models: Path, replicas: list[ServiceProcess], balancers: Balancers
) -> None:
    survivor = replicas[0]
    doomed = _replica(models, "doomed")
    try:
        doomed.wait_ready()
        balancer = balancers.start([_address(doomed), _address(survivor)])
        with httpx.Client(base_url=balancer.url, timeout=10) as client:
            for _ in range(4):  # both replicas answer while alive
                assert client.get("/readyz").status_code == 200
            doomed.kill()
            # POSTs first: the rotation's next turn is the killed replica's.
            answers = [_score(client, f"after-kill-{i}", [0.1, 0.2, 0.3, 0.4]) for i in range(10)]
            answers += [client.get("/readyz") for _ in range(20)]
    finally:
        doomed.stop()
    assert [a.status_code for a in answers] == [200] * 30, [a.text for a in answers]
    assert all(a.json()["result"]["status"] == "scored" for a in answers[:10])
    assert all(a.json().get("status") == "ready" for a in answers[10:])
    after_kill = balancer.log_lines()[4:]
    assert len(after_kill) == 30
    dead, alive = _address(doomed), _address(survivor)
    tried_dead = [line for line in after_kill if dead in line]
    # The request that found it dead went on to the survivor (a refused connect sends
    # nothing, so even a POST is passed on), and the dead one was then left out of the
    # rotation instead of getting every other request.
    assert tried_dead, "no request reached the killed replica: the test proved nothing"
    assert "POST /v1/score" in tried_dead[0]
    for line in tried_dead:
        assert f"upstream={dead}, {alive} " in line, line
        assert "upstream_status=502, 200 " in line, line
    assert len(tried_dead) < len(after_kill) // 2
