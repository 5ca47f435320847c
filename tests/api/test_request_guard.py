"""Size limit and authentication come before any body is read, on every route."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest
from calibration_support import ADMIN, API_KEYS, OPERATOR, OPERATOR_KEY, SCORER_KEY

LIMIT = 4096


@pytest.fixture
async def client(make_client: Any) -> Any:
    return await make_client(api_keys=API_KEYS, max_body_bytes=LIMIT)


PROTECTED_POSTS = [
    "/v1/feedback",
    "/v1/admin/thresholds/test-plant",
    "/v1/admin/thresholds/test-plant/rollback",
    "/v1/admin/pending-thresholds/1/approve",
    "/v1/admin/models/reload",
]


@pytest.mark.parametrize("path", PROTECTED_POSTS)
async def test_anonymous_requests_get_401_whatever_the_body(client: Any, path: str) -> None:
    for body in (b"{not json", b"x" * (LIMIT * 4)):
        response = await client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 401, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer")
    unknown_key = await client.post(path, content=b"{", headers={"X-API-Key": "nope" * 10})
    assert unknown_key.status_code == 401


async def test_declared_oversized_body_is_413_before_reading(client: Any) -> None:
    response = await client.post(
        "/v1/feedback",
        content=b" " * (LIMIT + 1),
        headers={**OPERATOR, "content-type": "application/json"},
    )
    assert response.status_code == 413
    assert response.json()["title"] == "Request body too large"


async def test_streamed_oversized_body_without_length_is_413(client: Any) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            yield b" " * 1024

    response = await client.post(
        "/v1/admin/thresholds/test-plant",
        content=chunks(),
        headers={**ADMIN, "content-type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    history = await client.get("/v1/admin/thresholds/test-plant", headers=ADMIN)
    assert history.json()["current"]["version"] == 1


async def test_bodies_within_the_limit_still_work(client: Any) -> None:
    ok = await client.post(
        "/v1/admin/thresholds/test-plant", json={"value": 2.0, "reason": "x"}, headers=ADMIN
    )
    assert ok.status_code == 201, ok.text
    malformed = await client.post(
        "/v1/feedback",
        content=b"{not json",
        headers={**OPERATOR, "content-type": "application/json"},
    )
    assert malformed.status_code == 400


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/v1/feedback", OPERATOR), ("/v1/admin/thresholds/test-plant", ADMIN)],
)
async def test_bad_json_is_400_as_on_the_scoring_endpoint(
    client: Any, path: str, headers: dict[str, str]
) -> None:
    """FastAPI gave 422 with the byte offset of the error as the reading index."""
    bodies = (
        b'{"label": "normal", ',
        b'{"label": "\xff\xfe"}',
        b'\xef\xbb\xbf{"label": "\xff"}',  # after a UTF-8 byte-order mark
        b"\xff\xfe{}",  # a UTF-16 byte-order mark: read as UTF-16, not a UTF-8 problem
    )
    for body in bodies:
        response = await client.post(
            path, content=body, headers={**headers, "content-type": "application/json"}
        )
        assert response.status_code == 400, (body, response.text)
        problem = response.json()
        assert problem["title"] == "Request body is not valid JSON", problem
        assert "errors" not in problem or all(e["reading_index"] is None for e in problem["errors"])
        bad_byte = body.find(b"\xff")
        if bad_byte > 0:  # not a UTF-16 mark; FastAPI said only "There was an error parsing..."
            assert "not UTF-8" in problem["detail"], problem
            assert f"at byte {bad_byte}" in problem["detail"], problem


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/v1/feedback", OPERATOR), ("/v1/admin/thresholds/test-plant", ADMIN)],
)
@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
        (b'{"label": ' + b"9" * 5000 + b"}", "more than 4,300 digits"),
    ],
    ids=["deep", "long-number"],
)
async def test_json_the_parser_gives_up_on_is_400_saying_why(
    make_client: Any, path: str, headers: dict[str, str], body: bytes, reason: str
) -> None:
    """The standard parser raises RecursionError or ValueError here, which FastAPI answered
    with only "There was an error parsing the body"."""
    client = await make_client(api_keys=API_KEYS, max_body_bytes=65536)
    response = await client.post(
        path, content=body, headers={**headers, "content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["title"] == "Request body is not valid JSON", problem
    assert reason in problem["detail"], problem


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
async def test_a_body_that_is_not_json_is_415_naming_the_type(
    client: Any, content_type: str | None
) -> None:
    headers = {**OPERATOR} | ({} if content_type is None else {"content-type": content_type})
    response = await client.post(
        "/v1/feedback", content=b'{"label": "normal", "reading_ids": ["x"]}', headers=headers
    )
    assert response.status_code == 415, response.text
    assert "application/json" in response.json()["detail"]
    charset = await client.post(
        "/v1/feedback",
        content=b'{"label": "normal", "reading_ids": ["x"]}',
        headers={**OPERATOR, "content-type": "application/json; charset=utf-8"},
    )
    assert charset.status_code == 404  # read as JSON: the reading id is unknown


@pytest.mark.parametrize(
    ("path", "body", "content_type"),
    [
        ("/v1/score", b'{"stream_id": "s", "reading": [0, 0, 0, 0]}', "application/json"),
        (
            "/v1/score?stream_id=s",
            np.zeros((2, 4), np.float32).tobytes(),
            "application/octet-stream",
        ),
        ("/v1/feedback", b'{"label": "normal", "reading_ids": ["x"]}', "application/json"),
    ],
)
async def test_a_compressed_body_is_415_not_read_as_it_came(
    client: Any, path: str, body: bytes, content_type: str
) -> None:
    """gzip bytes read as float32 readings would be scored as numbers: refused, naming the
    encoding; ``identity`` is no encoding."""
    key = OPERATOR_KEY if path == "/v1/feedback" else SCORER_KEY
    headers = {"X-API-Key": key, "content-type": content_type}
    packed = await client.post(
        path, content=gzip.compress(body), headers={**headers, "content-encoding": "gzip"}
    )
    assert packed.status_code == 415, packed.text
    assert "content encoding 'gzip'" in packed.json()["detail"]
    plain = await client.post(
        path, content=body, headers={**headers, "content-encoding": "identity"}
    )
    expected = 404 if path == "/v1/feedback" else 200  # 404: the feedback's id is unknown
    assert plain.status_code == expected, plain.text


async def _raw_post(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One request straight into the ASGI app: no client library rewrites the headers."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 1), "server": ("t", 80),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


@pytest.mark.parametrize(
    ("path", "key"), [("/v1/score", SCORER_KEY), ("/v1/feedback", OPERATOR_KEY)]
)
async def test_a_content_length_of_thousands_of_digits_is_413(
    client: Any, path: str, key: str
) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"9" * 5000)]
    headers.append((b"x-api-key", key.encode()))
    assert await _raw_post(client.app, path, headers) == 413


async def test_refusals_before_routing_are_counted_under_their_route(client: Any) -> None:
    """The runbook finds a client by endpoint: a 401 from the guard must say which one."""
    await client.get("/v1/admin/thresholds/test-plant")
    await client.get("/no/such/path")

    def count(endpoint: str, status: str) -> float | None:
        labels = {"endpoint": endpoint, "method": "GET", "status": status}
        value: float | None = client.state.registry.get_sample_value(
            "anomaly_http_requests_total", labels
        )
        return value

    assert count("/v1/admin", "401") == 1  # the guarded prefix: the route is not known yet
    assert count("unmatched", "404") == 1
    assert count("unmatched", "401") is None
