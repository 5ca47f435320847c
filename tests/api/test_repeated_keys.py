"""A JSON object that repeats a key is refused naming it, on every body the service reads:
the parsers kept the last value without a word (a label, a stream id, a sensor's value)."""

from __future__ import annotations

from typing import Any

import pytest
from calibration_support import ADMIN, API_KEYS, OPERATOR
from conftest import AppClient, ClientFactory


@pytest.fixture
async def client(make_client: ClientFactory) -> AppClient:
    return await make_client(api_keys=API_KEYS)


def assert_refused_naming(response: Any, key: str) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"].endswith("/repeated-key")
    assert [e["field"] for e in problem["errors"]] == [key]
    assert repr(key) in problem["detail"]


JSON = {"content-type": "application/json"}
ROW = "[0.5, 0, 0, 0]"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ('{"stream_id": "a", "stream_id": "b", "reading": ' + ROW + "}", "stream_id"),
        ('{"stream_id": "a", "reading": ' + ROW + ', "reading": [9, 9, 9, 9]}', "reading"),
        (
            '{"stream_id": "a", "reading": {"values": {"s0": 1, "s1": 0, "s2": 0, "s3": 0,'
            ' "s1": 5}}}',
            "s1",
        ),
        (
            '{"stream_id": "a", "readings": [' + ROW + ', {"values": ' + ROW + ', "timestamp":'
            ' "2026-01-05T10:00:00Z", "timestamp": "2026-01-05T11:00:00Z"}]}',
            "timestamp",
        ),
        # Each pair's value decodes to a colon the body does not show.
        ('{"stream_id": "a", "reading": ' + ROW + ', "stream_id": "\\u003a"}', "stream_id"),
        # orjson refuses NaN: the standard parser's path must refuse repeats too.
        ('{"stream_id": "a", "stream_id": "b", "reading": [NaN, 0, 0, 0]}', "stream_id"),
    ],
)
async def test_scoring_bodies(client: AppClient, body: str, key: str) -> None:
    response = await client.post("/v1/score", content=body, headers=JSON)
    assert_refused_naming(response, key)
    assert len(client.state.streams) == 0  # nothing was scored


async def test_a_large_plain_batch_repeating_its_stream_id(client: AppClient) -> None:
    """Bodies of plain number lists take the simdjson path, which finds the first value."""
    rows = ", ".join([ROW] * 400)
    body = '{"stream_id": "a", "readings": [' + rows + '], "stream_id": "b"}'
    assert len(body) > 4096
    response = await client.post("/v1/score", content=body, headers=JSON)
    assert_refused_naming(response, "stream_id")


async def test_colons_inside_strings_are_not_repeats(client: AppClient) -> None:
    """ISO timestamps and ids hold colons: the cheap count then sends the body to the exact
    check, which finds nothing to refuse."""
    body = (
        '{"stream_id": "line:7", "readings": [{"values": ' + ROW + ', "reading_id": "a:b:c",'
        ' "timestamp": "2026-01-05T10:00:00Z"}]}'
    )
    response = await client.post("/v1/score", content=body, headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["results"][0]["reading_id"] == "a:b:c"


async def test_feedback_label_given_twice(client: AppClient) -> None:
    scored = await client.post("/v1/score", json={"stream_id": "a", "reading": [0, 0, 0, 0]})
    reading_id = scored.json()["result"]["reading_id"]
    body = '{"label": "anomaly", "reading_ids": ["' + reading_id + '"], "label": "normal"}'
    response = await client.post("/v1/feedback", content=body, headers=JSON | OPERATOR)
    assert_refused_naming(response, "label")
    listed = await client.get("/v1/feedback", headers=OPERATOR)
    assert listed.json()["total"] == 0


async def test_feedback_nested_object(client: AppClient) -> None:
    body = (
        '{"label": "normal", "time_range": {"stream_id": "a", "start": 0, "end": 10,'
        ' "stream_id": "b"}}'
    )
    response = await client.post("/v1/feedback", content=body, headers=JSON | OPERATOR)
    assert_refused_naming(response, "stream_id")


async def test_admin_threshold_value_given_twice(client: AppClient) -> None:
    body = '{"value": 2.0, "reason": "x", "value": 3.0}'
    path = "/v1/admin/thresholds/test-plant"
    response = await client.post(path, content=body, headers=JSON | ADMIN)
    assert_refused_naming(response, "value")
    history = await client.get(path, headers=ADMIN)
    assert len(history.json()["versions"]) == 1


async def test_bad_json_on_a_feedback_route_is_still_malformed(client: AppClient) -> None:
    response = await client.post("/v1/feedback", content=b'{"label": ', headers=JSON | OPERATOR)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/malformed-body")
