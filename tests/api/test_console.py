"""/console and the routes only the console calls, without a browser: the page and its
files with their security headers, /v1/whoami, and a stream's readings."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from calibration_support import ADMIN, API_KEYS, OPERATOR, SCORER

from service.api.console import ASSETS_DIR, _ConsoleAssets


@pytest.fixture
async def client(make_client: Any) -> Any:
    return await make_client(api_keys=API_KEYS)


async def test_the_page_and_every_file_it_loads_are_local_with_a_strict_policy(
    client: Any,
) -> None:
    page = await client.get("/console")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    loaded = re.findall(r'(?:src|href)="([^"#]+)"', html)
    assert loaded and all(url.startswith("/console/assets/") for url in loaded), loaded
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "an inline script"
    assert not re.search(r"\son[a-z]+=", html), "an inline event handler"
    assert "style=" not in html
    modules = {p.name for p in ASSETS_DIR.glob("*.js")}
    for name in modules:  # the modules import each other by relative path only
        text = (ASSETS_DIR / name).read_text()
        for imported in re.findall(r'from "([^"]+)"', text):
            assert imported.startswith("./") and imported[2:] in modules, imported
        assert "eval(" not in text and "new Function" not in text and "innerHTML" not in text
    for url in [*loaded, *(f"/console/assets/{name}" for name in sorted(modules))]:
        response = await client.get(url)
        assert response.status_code == 200, url
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "'unsafe-" not in policy
        assert response.headers["x-content-type-options"] == "nosniff"
    assert page.headers["content-security-policy"].startswith("default-src 'none'")


async def test_whoami_names_the_key_and_its_scopes_and_refuses_none(client: Any) -> None:
    assert (await client.get("/v1/whoami")).status_code == 401
    assert (await client.get("/v1/whoami", headers=OPERATOR)).json() == {
        "name": "olga-operator",
        "scopes": ["feedback"],
    }
    assert (await client.get("/v1/whoami", headers=ADMIN)).json()["scopes"] == ["admin"]


async def test_a_streams_readings_come_oldest_first_with_scores_and_alerts(client: Any) -> None:
    values = np.vstack([np.zeros((3, 4)), np.full((5, 4), 3.0)])
    stamps = [1_700_000_000.0 + i for i in range(len(values))]
    readings = [{"values": v, "timestamp": t} for v, t in zip(values.tolist(), stamps, strict=True)]
    scored = await client.post(
        "/v1/score", json={"stream_id": "pump-1", "readings": readings}, headers=SCORER
    )
    assert scored.status_code == 200, scored.text
    other = {"stream_id": "pump-2", "readings": values[:2].tolist()}
    await client.post("/v1/score", json=other, headers=SCORER)
    response = await client.get("/v1/feedback/streams/pump-1/readings", headers=OPERATOR)
    assert response.status_code == 200, response.text
    points = response.json()["points"]
    results = scored.json()["results"]
    assert [p["reading_id"] for p in points] == [r["reading_id"] for r in results]
    assert [p["alert"] for p in points] == [r["alert"] for r in results]
    assert [p["score"] for p in points] == pytest.approx([r["score"] for r in results])
    assert [p["smoothed_score"] for p in points] == pytest.approx(
        [r["smoothed_score"] for r in results]
    )
    newest = await client.get(
        "/v1/feedback/streams/pump-1/readings", params={"limit": 2}, headers=OPERATOR
    )
    assert [p["reading_id"] for p in newest.json()["points"]] == [
        r["reading_id"] for r in results[-2:]
    ]
    refused = await client.get("/v1/feedback/streams/pump-1/readings", headers=SCORER)
    assert refused.status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/console/assets/__init__.py", 404),  # the package's Python is not served
        ("GET", "/console/assets/nope.js", 404),
        ("GET", "/console/nope", 404),
        ("GET", "/console/assets/../console.py", 404),
        ("POST", "/console", 405),
        ("POST", "/console/assets/console.js", 405),
    ],
)
async def test_refusals_under_console_carry_its_headers(
    client: Any, method: str, path: str, status: int
) -> None:
    response = await client.request(method, path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    if status == 405:
        assert response.headers["allow"] == "GET, HEAD"


async def test_the_page_answers_at_both_of_its_paths_and_to_head(client: Any) -> None:
    for path in ("/console", "/console/"):
        for method in ("GET", "HEAD"):
            response = await client.request(method, path)
            assert response.status_code == 200, (method, path)
            assert response.headers["x-frame-options"] == "DENY"
    assert (await client.get("/console/assets/console.css")).status_code == 200


def test_a_nul_in_an_asset_path_is_not_found_not_an_error() -> None:
    """The file system raises on a NUL byte, which the assets' app would answer with a 500
    and without the console's headers."""
    assets = _ConsoleAssets(directory=ASSETS_DIR)
    assert assets.lookup_path("__init__.py\x00.js") == ("", None)
    assert assets.lookup_path("console.js")[1] is not None
