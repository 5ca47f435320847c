"""/docs and /redoc render in a real browser that can reach nothing but the service, as on
a plant network with no way out. Needs Debian's chromium (.ci/run installs it)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from service_process import REPO, ServiceProcess

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("docs")
    running = ServiceProcess(REPO / "models", folder / "store.sqlite3", folder / "server.log")
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def rendered(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, no host name resolving but loopback's (the CDNs
    FastAPI's pages use are named by host)."""
    assert CHROMIUM is not None
    result = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--virtual-time-budget=15000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=90,
        check=True,
    )
    return result.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.parametrize(
    ("page", "rendered_operation"),
    [
        ("/docs", 'data-path="/v1/score"'),  # Swagger UI's operation list
        ("/redoc", "/v1/score"),  # ReDoc's rendered endpoint paths
    ],
)
def test_docs_render_without_internet(
    server: ServiceProcess, tmp_path: Path, page: str, rendered_operation: str
) -> None:
    dom = rendered(server.url + page, tmp_path / "profile")
    assert rendered_operation in dom, dom[-2000:]
    assert "Sensor anomaly service" in dom
