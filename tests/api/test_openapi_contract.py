"""What the OpenAPI document promises, pinned: security schemes and requirements, the
refusals each operation can answer, the 405's Allow header, and bounds in the schema that
the service enforces (schemathesis checks the rest in tests/integration)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from calibration_support import ADMIN, API_KEYS, OPERATOR, OPERATOR_KEY
from conftest import AppClient, ClientFactory

from service.scoring.registry import VALUE_REACH


@pytest.fixture
async def client(make_client: ClientFactory) -> AppClient:
    return await make_client(api_keys=API_KEYS, require_score_key=True)


async def spec_of(client: AppClient) -> dict[str, Any]:
    spec: dict[str, Any] = (await client.get("/openapi.json")).json()
    return spec


async def test_security_schemes_are_the_headers_the_service_reads(client: AppClient) -> None:
    """There were none: /docs had no Authorize button, so "Try it out" on a keyed route
    could only get a 401."""
    spec = await spec_of(client)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearer"]["description"],
    }
    assert (schemes["apiKey"]["in"], schemes["apiKey"]["name"]) == ("header", "X-API-Key")
    operation = spec["paths"]["/v1/feedback"]["get"]
    assert operation["security"] == [{"bearer": []}, {"apiKey": []}]
    # What Swagger UI sends for each scheme once authorized is accepted.
    assert (await client.get("/v1/feedback", headers={"X-API-Key": OPERATOR_KEY})).is_success
    bearer = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    assert (await client.get("/v1/feedback", headers=bearer)).is_success
    assert "security" not in spec["paths"]["/healthz"]["get"]


async def test_an_open_scoring_route_says_a_key_is_optional(make_client: ClientFactory) -> None:
    client = await make_client(api_keys=API_KEYS, require_score_key=False)
    operation = (await spec_of(client))["paths"]["/v1/score"]["post"]
    assert {} in operation["security"] and {"bearer": []} in operation["security"]
    assert "401" in operation["responses"]  # a key that is sent is still checked
    unknown = {"X-API-Key": "not-a-key-" + "0" * 30}
    body = {"stream_id": "s", "reading": [0, 0, 0, 0]}
    assert (await client.post("/v1/score", json=body, headers=unknown)).status_code == 401


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/admin/thresholds/{model}"),
        ("post", "/v1/admin/thresholds/{model}"),
        ("post", "/v1/admin/thresholds/{model}/rollback"),
        ("post", "/v1/admin/thresholds/{model}/recalibrate"),
        ("post", "/v1/admin/pending-thresholds/{pending_id}/approve"),
        ("post", "/v1/admin/pending-thresholds/{pending_id}/reject"),
        ("get", "/v1/drift/{model}"),
        ("get", "/v1/feedback/review-queue"),
        ("post", "/v1/feedback"),
        ("get", "/v1/models/{name}"),
        ("get", "/v1/streams/{stream_id}"),
        ("post", "/v1/score"),
    ],
)
async def test_operations_that_can_answer_404_document_it(
    client: AppClient, method: str, path: str
) -> None:
    responses = (await spec_of(client))["paths"][path][method]["responses"]
    assert "404" in responses, responses.keys()
    assert "503" in responses


async def test_every_documented_404_is_one_the_operation_answers(client: AppClient) -> None:
    """The other direction: an unknown model, pending id and stream give the 404 promised."""
    for method, path, key in [
        ("GET", "/v1/admin/thresholds/nope", ADMIN),
        ("POST", "/v1/admin/thresholds/nope/recalibrate", ADMIN),
        ("GET", "/v1/drift/nope", ADMIN),
        ("GET", "/v1/feedback/review-queue?model=nope", OPERATOR),
        ("POST", "/v1/admin/pending-thresholds/99/approve", ADMIN),
        ("GET", "/v1/streams/never-scored", ADMIN),
    ]:
        response = await client.request(method, path, headers=key, json={})
        assert response.status_code == 404, (method, path, response.text)


async def test_scope_refusals_are_documented_where_a_scope_can_be_missing(
    client: AppClient,
) -> None:
    paths = (await spec_of(client))["paths"]
    for path in ("/v1/admin/thresholds", "/v1/drift", "/v1/feedback/review-queue"):
        assert "403" in paths[path]["get"]["responses"], path
    # Any key may score: a 403 there cannot happen, so none is promised.
    assert "403" not in paths["/v1/score"]["post"]["responses"]
    refused = await client.get("/v1/admin/thresholds", headers=OPERATOR)
    assert refused.status_code == 403


@pytest.mark.parametrize("path", ["/v1/feedback", "/v1/admin/thresholds/test-plant"])
async def test_a_405_lists_every_method_of_the_path(client: AppClient, path: str) -> None:
    """Both paths serve GET and POST; the Allow header named only GET."""
    response = await client.request("PATCH", path, headers=ADMIN)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["allow"].split(",")}


@pytest.mark.parametrize("until", ["0.5", "1767607200", "2026-01-05", "2026-01-05T10:00:00"])
async def test_date_time_queries_take_only_a_date_time(client: AppClient, until: str) -> None:
    """until=0.5 was read as half a second after 1970 against a date-time schema."""
    response = await client.get("/v1/feedback", params={"until": until}, headers=OPERATOR)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "until"


async def test_a_date_time_query_is_accepted(client: AppClient) -> None:
    for until in ("2026-01-05T10:00:00Z", "2026-01-05T10:00:00.5+01:00"):
        response = await client.get("/v1/feedback", params={"until": until}, headers=OPERATOR)
        assert response.status_code == 200, response.text


async def test_model_names_follow_the_artifact_rule_in_schema_and_service(
    client: AppClient,
) -> None:
    spec = await spec_of(client)
    (name,) = spec["paths"]["/v1/models/{name}"]["get"]["parameters"]
    assert name["schema"]["pattern"] == "^[A-Za-z0-9][A-Za-z0-9._-]*$"
    assert name["schema"]["maxLength"] == 128
    for bad in (".hidden", "-x", "a" * 129):
        response = await client.get(f"/v1/models/{bad}", headers=ADMIN)
        assert response.status_code == 422, (bad, response.text)
    body = {"stream_id": "s", "model": ".hidden", "reading": [0, 0, 0, 0]}
    refused = await client.post("/v1/score", json=body, headers=ADMIN)
    assert refused.status_code == 422 and refused.json()["errors"][0]["field"] == "model"


async def test_hand_set_threshold_bounds_are_in_the_schema(client: AppClient) -> None:
    """The baseline's factor-1e6 rule answered 422 to values the schema called valid."""
    spec = await spec_of(client)
    value = spec["components"]["schemas"]["SetThreshold"]["properties"]["value"]
    assert (value["minimum"], value["maximum"]) == (1.0 / 1e6, 1.0 * 1e6)  # baseline 1.0
    path = "/v1/admin/thresholds/test-plant"
    for edge in (value["minimum"], value["maximum"]):
        response = await client.post(path, json={"value": edge, "reason": "x"}, headers=ADMIN)
        assert response.status_code == 201, response.text
    beyond = {"value": value["maximum"] * 1.01, "reason": "x"}
    assert (await client.post(path, json=beyond, headers=ADMIN)).status_code == 422


async def test_sensor_values_carry_the_models_sensors_and_reach(client: AppClient) -> None:
    """Unknown sensors and values whose error overflows were 422s for bodies the schema
    called valid; the bounds stated are exactly the ones enforced, to the last float."""
    schemas = (await spec_of(client))["components"]["schemas"]
    listed, by_name = schemas["ReadingIn"]["properties"]["values"]["anyOf"]
    assert (listed["minItems"], listed["maxItems"]) == (4, 4)
    assert by_name["required"] == ["s0", "s1", "s2", "s3"]
    assert by_name["additionalProperties"] is False
    low, high = listed["items"]["minimum"], listed["items"]["maximum"]
    assert high == pytest.approx(VALUE_REACH, rel=1e-7) and low == -high  # mean 0, scale 1
    ok = {"stream_id": "s", "reading": [high, 0, 0, low]}
    assert (await client.post("/v1/score", json=ok, headers=ADMIN)).status_code == 200
    for beyond in (math.nextafter(high, math.inf), math.nextafter(low, -math.inf)):
        far = {"stream_id": "s", "reading": [0, 0, beyond, 0]}
        refused = await client.post("/v1/score", json=far, headers=ADMIN)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"] == "values[2]"


async def test_a_null_reading_beside_readings_is_absent(client: AppClient) -> None:
    """The schema lets either be null (a client serialising unset fields); the service
    answered "send exactly one of reading or readings"."""
    body = {"stream_id": "s", "reading": None, "readings": [[0, 0, 0, 0]], "model": None}
    response = await client.post("/v1/score", json=body, headers=ADMIN)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 1


async def test_a_json_body_checks_the_binary_query_parameters(client: AppClient) -> None:
    body = {"stream_id": "s", "reading": [0, 0, 0, 0]}
    for params in ({"model": "a" * 200}, {"dtype": "int8"}, {"stream_id": "a/b"}):
        response = await client.post("/v1/score", json=body, params=params, headers=ADMIN)
        assert response.status_code == 422, (params, response.text)
    fine = await client.post("/v1/score", json=body, params={"dtype": "float64"}, headers=ADMIN)
    assert fine.status_code == 200
