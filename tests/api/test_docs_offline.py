"""The API docs work on a network with no way out: /docs and /redoc load Swagger UI and
ReDoc from the service itself, never from a CDN (tests/integration/test_docs_browser.py
renders them in a browser that can reach nothing but the service)."""

from __future__ import annotations

import re

import pytest
from conftest import AppClient

ASSET = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']""")


@pytest.mark.parametrize(
    ("page", "script"),
    [("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")],
)
async def test_docs_pages_load_only_from_the_service(
    client: AppClient, page: str, script: str
) -> None:
    response = await client.get(page)
    assert response.status_code == 200
    assets = ASSET.findall(response.text)
    assert any(asset.endswith(script) for asset in assets), assets
    assert "://" not in response.text.replace("window.location.origin", ""), response.text
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        loaded = await client.get(asset)
        assert loaded.status_code == 200, asset
        assert len(loaded.content) > 1000, asset  # the file itself, not an error page


@pytest.mark.parametrize("page", ["/docs", "/redoc", "/docs/oauth2-redirect"])
async def test_docs_pages_answer_head_like_fastapis_own(client: AppClient, page: str) -> None:
    """Uptime checks often send HEAD."""
    response = await client.head(page)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")


async def test_docs_files_are_counted_under_their_mount(client: AppClient) -> None:
    """A mount sets no route: without care its files would count as "unmatched" requests."""
    assert (await client.get("/docs-assets/swagger-ui.css")).status_code == 200
    assert (await client.get("/docs-assets/missing.js")).status_code == 404
    registry = client.state.registry

    def served(endpoint: str, status: str) -> float | None:
        labels = {"endpoint": endpoint, "method": "GET", "status": status}
        return registry.get_sample_value("anomaly_http_requests_total", labels)

    assert served("/docs-assets", "200") == 1
    assert served("/docs-assets", "404") == 1
    assert served("unmatched", "200") is None
