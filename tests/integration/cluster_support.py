"""The whole high-availability topology on loopback, for tests: one PostgreSQL (the shared
store), one Redis (stream state and recent readings), several ``python -m service``
replicas on both, and the repository's nginx config round-robin in front of them.

Built from the harnesses beside it (postgres_support, redis_harness, service_process,
balancer_support); this module only wires them and answers questions about the whole:
who leads, what each replica serves, what the store holds.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from balancer_support import Balancer, Balancers, support
from postgres_support import PostgresServer, require_postgres
from redis_harness import RedisServer, redis_server_binary
from service_process import ServiceProcess

KEY = "cluster-test-key-5e4d3c2b1a0f9e8d7c6b"
AUTH = {"Authorization": f"Bearer {KEY}"}


@dataclass(frozen=True)
class ClusterSettings:
    """What every replica runs with (the single reference process too, but for the store
    and Redis): the same models and settings, as the deployment docs require."""

    store_poll_s: float
    redis_timeout_s: float
    env: Mapping[str, str] = field(default_factory=dict)

    def replica_env(self, store_url: str | None, redis_url: str | None) -> dict[str, str]:
        env = {
            "ANOMALY_API_KEYS": json.dumps(
                [{"name": "cluster-test", "scopes": ["feedback", "admin"], "key": KEY}]
            ),
            "ANOMALY_STORE_POLL_S": str(self.store_poll_s),
            "ANOMALY_REDIS_TIMEOUT_S": str(self.redis_timeout_s),
            **self.env,
        }
        if store_url is not None:
            env["ANOMALY_STORE_URL"] = store_url
        if redis_url is not None:
            env["ANOMALY_REDIS_URL"] = redis_url
        return env


_handed_out: set[int] = set()  # a replica binds its port seconds after it is chosen


def stable_port() -> int:
    """A free loopback port below the kernel's ephemeral range. A replica killed and started
    again must get its port back; one in the ephemeral range may meanwhile have become the
    local end of some outgoing connection, and the restart would fail to bind."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(200):
        port = random.randrange(10_000, low)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise AssertionError("no free port below the ephemeral range")


class Replica:
    """One replica's process; killed and started again on the same port, so the balancer's
    upstream line keeps naming it."""

    def __init__(self, name: str, folder: Path, models: Path, env: dict[str, str]) -> None:
        self.name = name
        self.folder = folder
        self.models = models
        self.env = env
        self.port = stable_port()
        self.process = self._spawn(port=self.port)
        self.url = self.process.url
        self.address = f"127.0.0.1:{self.port}"

    def _spawn(self, port: int) -> ServiceProcess:
        return ServiceProcess(
            self.models,
            self.folder / f"{self.name}-unused.sqlite3",
            self.folder / f"{self.name}.log",
            self.env,
            port=port,
        )

    @property
    def alive(self) -> bool:
        return self.process.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, sockets are closed by the kernel."""
        self.process.process.send_signal(signal.SIGKILL)
        self.process.process.wait(timeout=10)

    def restart(self) -> None:
        assert not self.alive
        self.process.stop()  # closes the old log handle
        self.process = self._spawn(port=self.port)

    def stop(self) -> None:
        self.process.stop()

    def log_tail(self, chars: int = 3000) -> str:
        path = self.folder / f"{self.name}.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""

    # --- what it says about itself ------------------------------------------------------

    def leads(self) -> bool:
        """The recalibration-leader gauge of this replica's own /metrics."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        match = re.search(r"^anomaly_recalibration_leader (\S+)$", text, flags=re.MULTILINE)
        assert match, "no leader gauge in /metrics"
        return float(match.group(1)) == 1.0

    def served_version(self, model: str) -> int:
        listed = httpx.get(f"{self.url}/v1/models", timeout=5).json()["models"]
        (entry,) = [m for m in listed if m["name"] == model]
        version: int = entry["threshold"]["version"]
        return version

    def readings_scored(self) -> float:
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        return sum(
            float(value)
            for value in re.findall(
                r"^anomaly_readings_scored_total\{[^}]*\} (\S+)$", text, flags=re.MULTILINE
            )
        )

    def readiness(self) -> tuple[int, dict[str, Any]]:
        response = httpx.get(f"{self.url}/readyz", timeout=5)
        body: dict[str, Any] = response.json()
        return response.status_code, body


class Cluster:
    """PostgreSQL, Redis, the replicas and nginx, all started; :meth:`close` stops them."""

    def __init__(
        self,
        folder: Path,
        models: Path,
        settings: ClusterSettings,
        *,
        replicas: int,
        postgres: PostgresServer,
        redis: RedisServer,
        balancers: Balancers,
    ) -> None:
        self.folder = folder
        self.models = models
        self.settings = settings
        self.postgres = postgres
        self.redis = redis
        self.store_url = postgres.create_database()
        env = settings.replica_env(self.store_url, redis.url)
        # Started together: each loads torch and the models, the slow part of start-up.
        self.replicas = [Replica(f"replica-{i + 1}", folder, models, env) for i in range(replicas)]
        for replica in self.replicas:
            self.wait_ready(replica)
        self.balancer: Balancer = balancers.start([r.address for r in self.replicas])
        self.url = self.balancer.url

    def wait_ready(self, replica: Replica, timeout: float = 120.0) -> None:
        try:
            replica.process.wait_ready(timeout)
        except AssertionError as error:
            raise AssertionError(f"{replica.name}: {error}\n{replica.log_tail()}") from None

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.alive]

    def leaders(self) -> list[Replica]:
        return [r for r in self.live() if r.leads()]

    def heal(self) -> None:
        """Every server up and every replica running and ready: what each test starts from."""
        if not self.postgres.running():
            self.postgres.start()
        if self.redis.process is None or self.redis.process.poll() is not None:
            self.redis.start()
        for replica in self.replicas:
            if not replica.alive:
                replica.restart()
        for replica in self.replicas:
            self.wait_ready(replica)

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        """Rows of a query on the shared store, asked directly, not through a replica."""
        with psycopg.connect(self.store_url, autocommit=True, connect_timeout=10) as conn:
            return list(conn.execute(query, params).fetchall())

    def close(self) -> None:
        for replica in self.replicas:
            replica.stop()


@contextmanager
def cluster(
    folder: Path, models: Path, settings: ClusterSettings, *, replicas: int = 3
) -> Iterator[Cluster]:
    """A started cluster, everything stopped afterwards; skips, naming the Debian package,
    when PostgreSQL, Redis or nginx is missing."""
    nginx = support.find_nginx()
    if nginx is None:
        pytest.skip(support.MISSING)
    bin_dir = require_postgres()
    redis_server_binary()
    with ExitStack() as stack:
        postgres = PostgresServer(bin_dir)
        stack.callback(postgres.destroy)
        postgres.start()
        redis = RedisServer(folder / "redis")
        stack.callback(redis.stop)
        redis.start()
        balancers = Balancers(nginx)
        stack.callback(balancers.stop_all)
        built = Cluster(
            folder,
            models,
            settings,
            replicas=replicas,
            postgres=postgres,
            redis=redis,
            balancers=balancers,
        )
        stack.callback(built.close)
        yield built
    shutil.rmtree(folder / "redis", ignore_errors=True)


def reference_process(folder: Path, models: Path, settings: ClusterSettings) -> ServiceProcess:
    """One ``python -m service`` with every state in its own process (a SQLite file, no
    Redis): the embedded default, which the replicas together must answer like."""
    process = ServiceProcess(
        models,
        folder / "reference.sqlite3",
        folder / "reference.log",
        settings.replica_env(store_url=None, redis_url=None),
    )
    return process


@dataclass
class Outcome:
    """One request of a load loop: what it asked, what came back (status None: the
    connection failed, no HTTP answer)."""

    kind: str
    status: int | None
    body: Any
    started: float
    finished: float
    headers: dict[str, str] = field(default_factory=dict)
    error: str | None = None


class LoadLoop:
    """Runs ``step(client, i)`` over and over in a thread until stopped (or ``limit`` steps),
    each step returning its outcomes; bounded by ``limit`` so a hung cluster cannot hang
    the test."""

    def __init__(
        self, url: str, step: Callable[[httpx.Client, int], list[Outcome]], *, limit: int
    ) -> None:
        self._url = url
        self._step = step
        self._limit = limit
        self._stop = threading.Event()
        self.outcomes: list[Outcome] = []
        self.steps = 0
        self.failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="cluster-load", daemon=True)

    def __enter__(self) -> LoadLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the load loop did not stop"
        if self.failure is not None:
            raise AssertionError(f"the load loop failed: {self.failure!r}") from self.failure

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=self._url, timeout=30) as client:
                for i in range(self._limit):
                    if self._stop.is_set():
                        return
                    self.outcomes.extend(self._step(client, i))
                    self.steps += 1
        except BaseException as error:  # reported by stop(), in the test's thread
            self.failure = error


def send(client: httpx.Client, kind: str, method: str, path: str, **kwargs: Any) -> Outcome:
    """One request, its transport failure recorded rather than raised."""
    started = time.time()
    try:
        response = client.request(method, path, **kwargs)
    except httpx.TransportError as error:
        failed = f"{type(error).__name__}: {error}"
        return Outcome(kind, None, None, started, time.time(), error=failed)
    finished = time.time()
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return Outcome(kind, response.status_code, body, started, finished, dict(response.headers))
