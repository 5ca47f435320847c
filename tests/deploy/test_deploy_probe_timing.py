"""/readyz answers within the health checks' timeouts while PostgreSQL and Redis hang.

A server cut off by the network (packets dropped, not refused) makes a connection wait for
its timeout: libpq's 5 s, Redis's ``ANOMALY_REDIS_TIMEOUT_S``. A readiness probe that times
out counts as a failure, so a /readyz slower than the probe takes every replica out of the
Service at once, whatever the body would have said (a shared store down is meant to leave
replicas ready). The servers here accept connections and never answer."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from conftest import ClientFactory
from promql_support import REPO

# What the readiness result must leave of each probe's timeout: the request's own way there
# and back on a loaded node.
MARGIN_S = 1.0


def _probe_timeouts() -> dict[str, float]:
    """Each health check's timeout on /readyz, in seconds, by where it is set."""
    deployment = yaml.safe_load((REPO / "deploy" / "kubernetes" / "deployment.yaml").read_text())
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    timeouts = {"kubernetes readinessProbe": float(container["readinessProbe"]["timeoutSeconds"])}
    dockerfile = (REPO / "Dockerfile").read_text()
    (urlopen,) = re.findall(r"/readyz', timeout=(\d+)\)", dockerfile)
    timeouts["Dockerfile HEALTHCHECK"] = float(urlopen)
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    for name, service in compose["services"].items():
        test = " ".join(service.get("healthcheck", {}).get("test", []))
        if "/readyz" in test:
            (seconds,) = re.findall(r"timeout=(\d+)\)", test)
            timeouts[f"compose {name}"] = float(seconds)
    return timeouts


@pytest.fixture
def silent_server() -> Iterator[Any]:
    """``silent_server()``: a loopback port whose server accepts and never answers."""
    sockets: list[socket.socket] = []

    def listen() -> int:
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(64)
        sockets.append(server)
        return int(server.getsockname()[1])

    yield listen
    for server in sockets:
        server.close()


async def _timed_readyz(client: Any) -> tuple[float, Any]:
    started = time.monotonic()
    reply = await client.get("/readyz")
    return time.monotonic() - started, reply


def test_every_readiness_health_check_has_a_timeout() -> None:
    timeouts = _probe_timeouts()
    assert {"kubernetes readinessProbe", "Dockerfile HEALTHCHECK", "compose service"} <= set(
        timeouts
    )


async def test_readyz_answers_in_time_and_ready_while_postgresql_hangs(
    make_client: ClientFactory, silent_server: Any
) -> None:
    client = await make_client(
        store_url=f"postgresql://anomaly:secret@127.0.0.1:{silent_server()}/anomaly"
    )
    for _ in range(2):  # the second finds the first's check maybe still waiting
        elapsed, reply = await _timed_readyz(client)
        # The shared store is not a blocking check: the replica stays in the balancer.
        assert reply.status_code == 200, reply.text
        assert "unreachable" in reply.json()["checks"]["store"]
        for where, timeout in _probe_timeouts().items():
            assert elapsed <= timeout - MARGIN_S, f"{elapsed:.2f} s against {where}'s {timeout} s"


async def test_readyz_answers_in_time_while_postgresql_and_redis_hang(
    make_client: ClientFactory, silent_server: Any
) -> None:
    client = await make_client(
        store_url=f"postgresql://anomaly:secret@127.0.0.1:{silent_server()}/anomaly",
        redis_url=f"redis://127.0.0.1:{silent_server()}/0",
    )
    elapsed, reply = await _timed_readyz(client)
    assert reply.status_code == 503, reply.text
    checks = reply.json()["checks"]
    assert "unreachable" in checks["store"] and "unreachable" in checks["stream_state"]
    for where, timeout in _probe_timeouts().items():
        assert elapsed <= timeout - MARGIN_S, f"{elapsed:.2f} s against {where}'s {timeout} s"
