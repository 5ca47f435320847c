"""Every acknowledged label survives SIGKILL: a real server (``python -m service``) takes
feedback from concurrent clients, is killed mid-stream, restarted on the same store, and
must list every label it answered 2xx for. On the embedded SQLite store and on a
PostgreSQL store (a throw-away server the test starts; integration)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from service_process import ServiceProcess

KEY = "durability-test-key-5f4e3d2c1b0a99887766"
HEADERS = {"Authorization": f"Bearer {KEY}"}


SERVER_ENV = {
    "ANOMALY_API_KEYS": json.dumps(
        [{"name": "durability", "scopes": ["feedback", "admin"], "key": KEY}]
    ),
    "ANOMALY_RECALIBRATION_LABEL_TRIGGER": "25",
    "ANOMALY_RECALIBRATION_INTERVAL_S": "0.5",
}


class Server(ServiceProcess):
    def __init__(self, models_dir: Path, store: Path | str, log: Path) -> None:
        if isinstance(store, str):  # a PostgreSQL URL
            super().__init__(
                models_dir,
                log.with_suffix(".unused"),
                log,
                {**SERVER_ENV, "ANOMALY_STORE_URL": store},
            )
        else:
            super().__init__(models_dir, store, log, SERVER_ENV)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where the labels go: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return tmp_path / "var" / "feedback.sqlite3"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.stop()


def post_until_refused(
    url: str, worker: int, acked: dict[str, list[int]], stop: threading.Event
) -> None:
    """Post labels until the server goes away; record what it acknowledged."""
    with httpx.Client(base_url=url, headers=HEADERS, timeout=5.0) as client:
        i = 0
        while not stop.is_set():
            label_id = f"w{worker}-{i}"
            body = {
                "label": "normal",
                "client_label_id": label_id,
                "readings": {"values": [[0.01 * i, 0.1, -0.1, 0.2 * worker]], "stream_id": "d"},
            }
            try:
                response = client.post("/v1/feedback", json=body)
            except httpx.TransportError:
                return
            if 200 <= response.status_code < 300:
                acked[label_id] = [lab["id"] for lab in response.json()["labels"]]
            i += 1


def test_acknowledged_labels_survive_sigkill(
    tmp_path: Path, write_test_artifact: Any, servers: list[Server], store: Path | str
) -> None:
    models = tmp_path / "models"
    write_test_artifact(models)
    log = tmp_path / "server.log"

    first = Server(models, store, log)
    servers.append(first)
    first.wait_ready()
    acked: dict[str, list[int]] = {}
    stop = threading.Event()
    workers = [
        threading.Thread(target=post_until_refused, args=(first.url, w, acked, stop))
        for w in range(3)
    ]
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + 60
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.01)
    first.kill()  # mid-stream: three clients are posting right now
    for worker in workers:
        worker.join(timeout=15)
    stop.set()
    assert len(acked) >= 150, "the server acknowledged too few labels before the kill"

    second = Server(models, store, log)
    servers.append(second)
    second.wait_ready()
    stored: set[int] = set()
    cursor: int | None = None
    with httpx.Client(base_url=second.url, headers=HEADERS, timeout=10.0) as client:
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if cursor is not None:
                params["cursor"] = cursor
            page = client.get("/v1/feedback", params=params).json()
            stored.update(item["id"] for item in page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        expected = {label_id for ids in acked.values() for label_id in ids}
        missing = expected - stored
        assert not missing, f"{len(missing)} acknowledged labels lost: {sorted(missing)[:10]}"
        # Idempotency survives the restart too: a retry gets the stored answer.
        some_id, some_labels = next(iter(acked.items()))
        worker, index = some_id[1:].split("-")
        retry = client.post(
            "/v1/feedback",
            json={
                "label": "normal",
                "client_label_id": some_id,
                "readings": {
                    "values": [[0.01 * int(index), 0.1, -0.1, 0.2 * int(worker)]],
                    "stream_id": "d",
                },
            },
        )
        assert retry.status_code == 200
        assert [lab["id"] for lab in retry.json()["labels"]] == some_labels
