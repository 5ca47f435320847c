"""The image built from the Dockerfile and run for real, with podman (container_harness.py).

The base image is assembled from Debian packages when absent, the service image is built in
Docker's format (so it keeps its HEALTHCHECK) from this machine's pip sources, then run on
loopback with host networking and a named volume, in production mode with a hashed key. The
HEALTHCHECK must pass, the process must run as uid 10001, a reading is scored and labelled,
and the label must still be there after the container restarts. The first build assembles
the base and installs torch (minutes); later ones reuse podman's layer cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from container_harness import (
    DEBIAN_PACKAGES,
    Podman,
    build_image,
    container,
    ensure_base_image,
    host_pip_sources,
    logs,
    missing_programs,
    wait_healthy,
)
from service_process import free_port

pytestmark = pytest.mark.integration

IMAGE = "localhost/anomaly-service:integration-test"
KEY = "container-test-3f9a1c7e5b2d4f6a8c0e2b4d6f8a1c3e"


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    missing = missing_programs()
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed (Debian packages {DEBIAN_PACKAGES}; "
            ".ci/run installs them)"
        )
    if os.geteuid() != 0:
        pytest.skip("builds with root's podman storage and mmdebstrap: run as root (.ci/run)")
    root = tmp_path_factory.mktemp("container")
    return Podman(conf=root / "containers.conf", log=root / "podman.log")


@pytest.fixture(scope="module")
def image(podman: Podman, tmp_path_factory: pytest.TempPathFactory) -> str:
    work = tmp_path_factory.mktemp("image")
    ensure_base_image(podman, work)
    return build_image(podman, IMAGE, host_pip_sources(work / "wheels"))


@pytest.fixture
def names() -> Iterator[tuple[str, str]]:
    suffix = uuid.uuid4().hex[:10]
    yield f"anomaly-test-{suffix}", f"anomaly-test-data-{suffix}"


def _keys() -> str:
    digest = hashlib.sha256(KEY.encode()).hexdigest()
    return json.dumps([{"name": "ops", "scopes": ["score", "feedback"], "key_sha256": digest}])


def test_the_image_keeps_its_healthcheck_runs_as_10001_and_keeps_labels_across_a_restart(
    podman: Podman, image: str, names: tuple[str, str]
) -> None:
    healthcheck = podman.run("image", "inspect", "--format", "{{json .HealthCheck}}", image)
    assert "/readyz" in healthcheck.stdout, "the image lost its HEALTHCHECK (OCI format?)"
    port = free_port()
    env = {"ANOMALY_HOST": "127.0.0.1", "ANOMALY_PORT": str(port), "ANOMALY_API_KEYS": _keys()}
    name, volume = names
    with container(podman, image, name, volume, env):
        wait_healthy(podman, name)
        status = podman.run("inspect", "--format", "{{.State.Health.Status}}", name)
        assert status.stdout.strip() == "healthy"
        ids = podman.run("exec", name, "sh", "-c", "id -u; id -g").stdout.split()
        assert ids == ["10001", "10001"], ids

        headers = {"Authorization": f"Bearer {KEY}"}
        # The bundled model reads a window of 20: the 20th reading of a stream is scored.
        readings = {"stream_id": "line-1", "readings": [[0.0] * 50] * 20}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            # Production is closed by default: no key, no score.
            assert client.post("/v1/score", json=readings).status_code == 401
            scored = client.post("/v1/score", json=readings, headers=headers)
            assert scored.status_code == 200, scored.text
            result = scored.json()["results"][-1]
            assert result["status"] == "scored" and result["anomaly"] is True
            label = {
                "label": "anomaly",
                "reading_ids": [result["reading_id"]],
                "client_label_id": f"container-{volume}",
            }
            stored = client.post("/v1/feedback", json=label, headers=headers)
            assert stored.status_code == 201, stored.text

        podman.run("restart", "--time", "30", name, timeout=90)
        wait_healthy(podman, name)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            page = client.get("/v1/feedback", headers=headers)
            assert page.status_code == 200, page.text
        labels = page.json()["items"]
        assert [(item["reading_id"], item["label"]) for item in labels] == [
            (result["reading_id"], "anomaly")
        ], logs(podman, name)
        mountpoint = podman.run("volume", "inspect", "--format", "{{.Mountpoint}}", volume)
        store = Path(mountpoint.stdout.strip()) / "feedback.sqlite3"
        assert store.stat().st_uid == 10001, "the store lives on the volume, owned by the service"


def test_the_image_refuses_to_start_in_production_without_keys(
    podman: Podman, image: str, names: tuple[str, str]
) -> None:
    env = {"ANOMALY_HOST": "127.0.0.1", "ANOMALY_PORT": str(free_port())}
    name, volume = names
    with container(podman, image, name, volume, env):
        exited = podman.run("wait", name, timeout=120).stdout.strip()
        assert exited not in {"", "0"}, exited
        assert "production mode needs API keys" in logs(podman, name)
