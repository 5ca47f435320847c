"""POST /v1/score is served by a lean ASGI path in front of the router unless requests are
traced; the FastAPI route stays registered for OpenAPI and other methods. Both call one
function (``service.api.score.serve_score``). These tests pin that split."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from conftest import AppClient, ClientFactory
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from service.scoring.payload import ParsedRequest
from service.scoring.scored import ScoredBatch
from service.state import state_dependency

SCORE = "/v1/score"


def requests_counted(client: AppClient, status: str, method: str = "POST") -> float:
    labels = {"endpoint": SCORE, "method": method, "status": status}
    value = client.state.registry.get_sample_value("anomaly_http_requests_total", labels)
    return 0.0 if value is None else value


async def test_scoring_skips_the_route_dependencies(client: AppClient) -> None:
    async def never(*_: object) -> None:
        raise AssertionError("the FastAPI route's dependencies ran for POST /v1/score")

    client.app.dependency_overrides[state_dependency] = never
    response = await client.post(SCORE, json={"stream_id": "s", "reading": [0, 0, 0, 2]})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["content-length"]) == len(response.content)
    assert response.json()["result"]["error"] == pytest.approx(1.0)
    assert requests_counted(client, "200") == 1


async def test_binary_reply_and_query_parameters(client: AppClient) -> None:
    body = np.array([[0, 0, 0, 2], [0, 0, 0, 0]], dtype="<f4").tobytes()
    response = await client.post(
        f"{SCORE}?stream_id=bin",
        content=body,
        headers={"content-type": "application/octet-stream"},
    )
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["stream_id"] == "bin" and reply["count"] == 2
    assert reply["error"] == pytest.approx([1.0, 0.0])


async def test_errors_are_problems_and_counted(client: AppClient) -> None:
    response = await client.post(SCORE, content=b"{", headers={"content-type": "text/plain"})
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["instance"] == SCORE
    assert requests_counted(client, "415") == 1


async def test_other_methods_reach_the_router(client: AppClient) -> None:
    response = await client.get(SCORE)
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert requests_counted(client, "405", method="GET") == 1


async def test_openapi_still_documents_scoring(client: AppClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    operation = spec["paths"][SCORE]["post"]
    assert set(operation["requestBody"]["content"]) == {
        "application/json",
        "application/octet-stream",
        "application/x-npy",
    }
    assert {"ScoreRequest", "ScoreResponse", "BulkScoreResponse"} <= set(
        spec["components"]["schemas"]
    )


async def test_a_key_is_still_required_when_configured(make_client: ClientFactory) -> None:
    client = await make_client(
        api_keys=[{"name": "scorer", "scopes": ["score"], "key": "k" * 32}],
        require_score_key=True,
    )
    body = {"stream_id": "s", "reading": [0, 0, 0, 0]}
    refused = await client.post(SCORE, json=body)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert requests_counted(client, "401") == 1
    accepted = await client.post(SCORE, json=body, headers={"X-API-Key": "k" * 32})
    assert accepted.status_code == 200, accepted.text


async def test_concurrent_single_readings_each_get_their_own_answer(client: AppClient) -> None:
    """Single readings arriving together share a model call: each still gets its own
    result, refusal or problem body, and the counts are exact."""
    bodies: list[dict[str, object]] = [
        {"stream_id": f"s{i % 3}", "reading": [0, 0, 0, float(i)]} for i in range(12)
    ]
    bodies[4] = {"stream_id": "s1", "reading": [0, 0, 0]}  # wrong length
    bodies[7] = {"stream_id": "s1", "reading": [0, 0, 0, 1], "model": "missing"}
    responses = await asyncio.gather(*(client.post(SCORE, json=b) for b in bodies))
    for i, response in enumerate(responses):
        if i == 4:
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
        elif i == 7:
            assert response.status_code == 404, response.text
        else:
            assert response.status_code == 200, response.text
            result = response.json()["result"]
            assert result["error"] == pytest.approx(i * i / 4)
    assert requests_counted(client, "200") == 10
    readings = client.state.registry.get_sample_value(
        "anomaly_readings_scored_total", {"model": "test-plant"}
    )
    assert readings == 10


@pytest.mark.parametrize("enabled", [False, True])
async def test_fastapi_opentelemetry_only_when_asked(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, enabled: bool
) -> None:
    """Off by default, FastAPI does not look for an SDK on each request; with
    ANOMALY_OPENTELEMETRY and an SDK configured, scoring requests become spans."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    client = await make_client(opentelemetry=enabled)
    response = await client.post(SCORE, json={"stream_id": "s", "reading": [0, 0, 0, 2]})
    assert response.status_code == 200, response.text
    spans = {span.name: span for span in exporter.get_finished_spans()}
    if not enabled:
        assert spans == {}
        return
    server = spans["POST /v1/score"]  # named by its route, with the endpoint's span inside
    assert server.attributes is not None and server.attributes["http.route"] == "/v1/score"
    assert "fastapi.endpoint" in spans


@pytest.mark.parametrize("tracing", [False, True])
async def test_tracing_on_or_off_scores_the_same_way(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, tracing: bool
) -> None:
    """Whichever way POST /v1/score is served (the lean path, or FastAPI's route when
    requests are traced), a single reading goes through the batcher and a batch does not."""
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: TracerProvider())
    client = await make_client(opentelemetry=tracing)
    pipeline = client.state.pipeline
    batched: list[int] = []
    score_many = pipeline.score_many

    def counted(requests: list[ParsedRequest]) -> list[ScoredBatch | Exception]:
        batched.append(len(requests))
        return score_many(requests)

    monkeypatch.setattr(pipeline, "score_many", counted)
    single = await client.post(SCORE, json={"stream_id": "s", "reading": [0, 0, 0, 2]})
    batch = await client.post(SCORE, json={"stream_id": "s", "readings": [[0, 0, 0, 2]] * 3})
    assert single.status_code == 200 and batch.status_code == 200, (single.text, batch.text)
    assert batched == [1]
    assert single.json()["result"]["error"] == pytest.approx(1.0)
    assert [r["error"] for r in batch.json()["results"]] == pytest.approx([1.0] * 3)
