"""The service's HTTP API as the load tests use it: request builders and response checks.

Everything that knows a path, a field name or a content type lives here, so a change to the
API is one edit away from the scenarios.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import Any

import httpx
import numpy as np
import orjson
from prometheus_client.parser import text_string_to_metric_families

from loadtests.baseline_app import EMPTY_PATH
from loadtests.payloads import SensorSpace
from loadtests.wire import RequestTemplate

__all__ = ["EMPTY_PATH"]

READY_PATH = "/readyz"
SCORE_PATH = "/v1/score"
FEEDBACK_PATH = "/v1/feedback"
METRICS_PATH = "/metrics"
NPZ_TYPE = "application/x-npz"
STREAM_PREFIX = "lt-"  # stream ids are lt-<10 digits>, cycling through the scenario's streams
_NUMPY = orjson.OPT_SERIALIZE_NUMPY


class ResponseMismatch(AssertionError):
    """The service answered a load-test request wrongly; the load test would measure nonsense."""


def _stream() -> str:
    return STREAM_PREFIX + "@STREAM@@@"


def reading_id(token: str = "@UNIQUE@@@") -> str:
    """A client reading id unique to the run (the run tag) and the send (the token)."""
    return f"lt-@RUNTAG@@@-{token}"


def single_request(
    space: SensorSpace, reading: np.ndarray, *, with_reading_id: bool = False
) -> RequestTemplate:
    """One reading as a list of floats in manifest order (optionally with a client id)."""
    value: Any = reading
    if with_reading_id:
        value = {"values": reading, "reading_id": reading_id()}
    body = orjson.dumps({"stream_id": _stream(), "reading": value}, option=_NUMPY)
    return RequestTemplate("POST", SCORE_PATH, body, "application/json", readings=1, kind="score")


def to_empty_endpoint(template: RequestTemplate) -> RequestTemplate:
    return replace(template, path=EMPTY_PATH, kind="empty")


def to_floor(template: RequestTemplate) -> RequestTemplate:
    return replace(template, path=EMPTY_PATH, kind="floor")


def json_batch_request(space: SensorSpace, readings: np.ndarray) -> RequestTemplate:
    body = orjson.dumps({"stream_id": _stream(), "readings": readings}, option=_NUMPY)
    return RequestTemplate(
        "POST", SCORE_PATH, body, "application/json", readings=len(readings), kind="score-batch"
    )


def binary_batch_request(
    space: SensorSpace, readings: np.ndarray, *, npz_reply: bool = False
) -> RequestTemplate:
    """Raw little-endian float32 rows in manifest order; the stream goes in the query. With
    ``npz_reply`` the columnar reply comes back as numpy arrays (.npz) instead of JSON."""
    body = np.ascontiguousarray(readings, dtype="<f4").tobytes()
    return RequestTemplate(
        "POST",
        f"{SCORE_PATH}?stream_id={_stream()}",
        body,
        "application/octet-stream",
        readings=len(readings),
        kind="score-binary-npz" if npz_reply else "score-binary",
        headers={"Accept": NPZ_TYPE} if npz_reply else {},
    )


def feedback_request(api_key: str, *, backref: int) -> RequestTemplate:
    """An operator confirms as normal the reading scored ``backref`` sends earlier, by its id
    (the feedback scope's key; the label id makes the request idempotent)."""
    body = orjson.dumps(
        {
            "label": "normal",
            "client_label_id": reading_id(),
            "reading_ids": [reading_id("@BACKREF@@")],
            "note": "load test",
        }
    )
    return RequestTemplate(
        "POST",
        FEEDBACK_PATH,
        body,
        "application/json",
        readings=0,
        kind="feedback",
        headers={"X-API-Key": api_key},
        backref=backref,
    )


def _json_unless_success(response: httpx.Response, template: RequestTemplate) -> None:
    if not response.is_success:
        raise ResponseMismatch(
            f"{template.kind} request to {template.path} answered {response.status_code}: "
            f"{response.text[:500]}"
        )


def _json(response: httpx.Response, template: RequestTemplate) -> Any:
    _json_unless_success(response, template)
    try:
        return response.json()
    except ValueError as exc:
        raise ResponseMismatch(f"{template.kind} reply is not JSON: {exc}") from None


def _npz(response: httpx.Response, template: RequestTemplate) -> dict[str, Any]:
    """The .npz reply as the JSON one would read: arrays as lists, 0-d arrays as scalars."""
    _json_unless_success(response, template)
    _expect(
        response.headers.get("content-type") == NPZ_TYPE,
        f"asked for {NPZ_TYPE}, got {response.headers.get('content-type')}",
    )
    try:
        with np.load(io.BytesIO(response.content), allow_pickle=False) as arrays:
            return {name: arrays[name].tolist() for name in arrays.files}
    except (ValueError, OSError) as exc:
        raise ResponseMismatch(f"{template.kind} reply is not an .npz: {exc}") from None


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ResponseMismatch(message)


def _check_result(result: Any, space: SensorSpace, where: str) -> None:
    _expect(isinstance(result, dict), f"{where}: not an object")
    _expect(result.get("model") == space.model, f"{where}: model {result.get('model')!r}")
    _expect(result.get("status") in {"scored", "warming_up"}, f"{where}: status {result}")
    if result["status"] == "scored":
        for name in ("error", "score", "smoothed_score", "threshold"):
            value = result.get(name)
            _expect(
                isinstance(value, int | float) and np.isfinite(value) and value >= 0,
                f"{where}: {name} = {value!r}",
            )
        _expect(isinstance(result.get("anomaly"), bool), f"{where}: anomaly flag missing")
        top = result.get("top_sensors")
        _expect(isinstance(top, list) and len(top) >= 1, f"{where}: no top sensors")
        _expect(
            all(t.get("sensor") in space.sensors for t in top),
            f"{where}: top sensors {top} are not the model's",
        )


def check_response(
    template: RequestTemplate, body: bytes, response: httpx.Response, space: SensorSpace
) -> None:
    """Raise :class:`ResponseMismatch` unless ``response`` answers ``body`` correctly."""
    if template.kind in ("empty", "floor"):
        _expect(
            response.status_code == 200, f"{template.kind} endpoint answered {response.status_code}"
        )
        return
    npz_reply = template.kind == "score-binary-npz"
    data = _npz(response, template) if npz_reply else _json(response, template)
    if template.kind == "score":
        request = orjson.loads(body)
        _expect(data.get("stream_id") == request["stream_id"], f"stream id in {data}")
        _check_result(data.get("result"), space, "single reading result")
        sent = request["reading"]
        if isinstance(sent, dict) and "reading_id" in sent:
            _expect(
                data["result"].get("reading_id") == sent["reading_id"],
                f"reading id {data['result'].get('reading_id')!r}, sent {sent['reading_id']!r}",
            )
    elif template.kind == "score-batch":
        results = data.get("results")
        _expect(
            isinstance(results, list) and len(results) == template.readings,
            f"batch of {template.readings} answered with "
            f"{len(results) if isinstance(results, list) else results!r} results",
        )
        assert isinstance(results, list)  # checked above; for the type checker
        for index in (0, len(results) // 2, len(results) - 1):
            _check_result(results[index], space, f"batch result {index}")
    elif template.kind in ("score-binary", "score-binary-npz"):
        _expect(data.get("count") == template.readings, f"binary batch count {data.get('count')}")
        _expect(data.get("model") == space.model, f"binary batch model {data.get('model')!r}")
        scored = template.readings - int(data.get("warming_up", 0))
        for name in ("error", "score", "smoothed_score"):
            column = data.get(name)
            _expect(
                isinstance(column, list) and len(column) in {template.readings, scored},
                f"binary batch {name} has {len(column) if isinstance(column, list) else column}",
            )
            _expect(bool(np.isfinite(np.asarray(column, dtype=float)).all()), f"{name} not finite")
    elif template.kind == "feedback":
        request = orjson.loads(body)
        _expect(response.status_code == 201, f"feedback answered {response.status_code}: {data}")
        _expect(not data.get("replayed"), f"a fresh label was answered as a replay: {data}")
        labels = data.get("labels")
        _expect(
            isinstance(labels, list)
            and len(labels) == 1
            and labels[0].get("reading_id") == request["reading_ids"][0]
            and labels[0].get("label") == "normal",
            f"feedback on {request['reading_ids']} answered {data}",
        )
    else:
        raise ValueError(f"unknown request kind {template.kind!r}")


def check_model(base_url: str, space: SensorSpace) -> None:
    """The served model must be the one the payloads were generated for."""
    response = httpx.get(f"{base_url}/v1/models/{space.model}", timeout=10.0)
    if response.status_code != 200:
        raise ResponseMismatch(
            f"GET /v1/models/{space.model} answered {response.status_code}: {response.text[:300]}"
        )
    served = response.json()
    _expect(
        served.get("version") == space.version,
        f"the service serves {space.model} v{served.get('version')}, "
        f"the payloads were built for v{space.version}",
    )
    _expect(
        tuple(served.get("sensors", ())) == space.sensors,
        "the served model's sensors differ from the manifest's",
    )


@dataclass(frozen=True)
class StreamState:
    active: int
    evictions: float


def stream_state(base_url: str) -> StreamState:
    """Active streams and evictions so far, from the service's Prometheus metrics."""
    text = httpx.get(f"{base_url}{METRICS_PATH}", timeout=10.0).text
    active, evictions = -1, 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "anomaly_active_streams":
                active = int(sample.value)
            elif sample.name == "anomaly_stream_evictions_total":
                evictions += sample.value
    if active < 0:
        raise ResponseMismatch("/metrics has no anomaly_active_streams")
    return StreamState(active, evictions)


def status_counts(base_url: str) -> dict[str, float]:
    """Requests so far by "METHOD endpoint status", from the service's own request metrics."""
    text = httpx.get(f"{base_url}{METRICS_PATH}", timeout=10.0).text
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "anomaly_http_requests_total":
                labels = sample.labels
                key = f"{labels['method']} {labels['endpoint']} {labels['status']}"
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def readings_scored(base_url: str) -> float:
    """Readings the service has scored so far (all models), from its metrics."""
    text = httpx.get(f"{base_url}{METRICS_PATH}", timeout=10.0).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "anomaly_readings_scored_total"
    )
