"""POST/GET /v1/feedback and the review queue through the real app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from calibration_support import ADMIN, API_KEYS, OPERATOR, errors_of, readings
from conftest import build_test_artifact
from prometheus_client.parser import text_string_to_metric_families

from service.api.review import reconstructs_the_reading
from service.calibration.records import content_fingerprint
from service.schemas import as_datetime
from service.scoring.artifact import load_artifact

MODEL = "test-plant"


@pytest.fixture
async def client(make_client: Any) -> Any:
    return await make_client(api_keys=API_KEYS, review_audit_size=5)


async def score(client: Any, stream: str, values: np.ndarray, **extra: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/score", json={"stream_id": stream, "readings": values.tolist(), **extra}
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def post(client: Any, body: dict[str, Any]) -> Any:
    return await client.post("/v1/feedback", json=body, headers=OPERATOR)


async def test_label_by_reading_id_records_errors_versions_and_author(client: Any) -> None:
    values = np.array([[2.0, 0.0, 0.0, 0.0], [0.1, 0.1, 0.1, 0.1]])
    scored = await score(client, "pump-1", values)
    first = scored["results"][0]
    response = await post(
        client, {"label": "anomaly", "reading_ids": [first["reading_id"]], "note": "bearing"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 1 and "idempotent-replayed" not in response.headers
    label = body["labels"][0]
    assert label["reading_id"] == first["reading_id"]
    assert label["stream_id"] == "pump-1"
    assert label["error"] == pytest.approx(1.0)  # mean of (4, 0, 0, 0)
    assert label["sensor_errors"] == pytest.approx([4.0, 0.0, 0.0, 0.0])
    assert (label["model"], label["model_version"]) == (MODEL, "1")
    assert (label["threshold"], label["threshold_version"]) == (1.0, 1)
    assert (label["scored_anomaly"], label["scored_alert"]) == (first["anomaly"], first["alert"])
    assert (label["author"], label["source"], label["note"]) == (
        "olga-operator",
        "reading_id",
        "bearing",
    )


async def test_client_label_id_makes_posts_idempotent(client: Any) -> None:
    scored = await score(client, "pump-1", np.full((3, 4), 0.5))
    ids = [r["reading_id"] for r in scored["results"]]
    body = {"label": "normal", "reading_ids": ids, "client_label_id": "shift-7-0001"}
    first = await post(client, body)
    again = await post(client, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.content == first.content  # the very same answer
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    listed = (await client.get("/v1/feedback", headers=OPERATOR)).json()
    assert listed["total"] == 3  # stored once
    conflict = await post(client, {**body, "label": "anomaly"})
    assert conflict.status_code == 409
    assert "shift-7-0001" in conflict.json()["detail"]


async def test_stored_requests_keep_their_fingerprint_across_the_stream_id_field(
    client: Any,
) -> None:
    """A retry of a request stored before stream_id existed must still replay (200), so a
    request without stream_id is fingerprinted as it was then."""
    ids = [r["reading_id"] for r in (await score(client, "pump-1", np.zeros((2, 4))))["results"]]
    body = {"label": "normal", "reading_ids": ids, "client_label_id": "before-upgrade"}
    assert (await post(client, body)).status_code == 201
    stored_hash, _ = client.state.store.find_submission("before-upgrade")
    fields = ("label", "client_label_id", "note", "reading_ids", "readings", "time_range")
    as_before = {"author": "olga-operator", "request": {f: body.get(f) for f in fields}}
    assert stored_hash == content_fingerprint(as_before)


async def test_feedback_counter_counts_new_labels_only(client: Any) -> None:
    body = {
        "label": "normal",
        "client_label_id": "c1",
        "readings": {"values": [[0.1] * 4, [0.2] * 4]},
    }
    assert (await post(client, body)).status_code == 201
    assert (await post(client, body)).status_code == 200
    text = (await client.get("/metrics")).text
    counts = {
        s.labels["label"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "anomaly_feedback_labels_total"
    }
    assert counts == {"normal": 2.0, "anomaly": 0.0}  # labelled counters start at 0


async def test_a_reading_id_given_twice_is_refused(client: Any) -> None:
    """It once stored two labels for one reading, counted twice by metrics and triggers."""
    reading_id = (await score(client, "pump-1", np.zeros((1, 4))))["results"][0]["reading_id"]
    response = await post(client, {"label": "normal", "reading_ids": [reading_id, reading_id]})
    assert response.status_code == 422
    assert f"reading id '{reading_id}' is given more than once" in response.text
    listed = (await client.get("/v1/feedback", headers=OPERATOR)).json()
    assert listed["total"] == 0


async def test_a_client_id_several_streams_use_needs_the_stream(client: Any) -> None:
    """Per-device counters as reading ids: the label went to whichever stream used the id
    last, a normal reading confirmed as an anomaly or the other way round."""
    faulty = {"values": [3.0, 0.0, 0.0, 0.0], "reading_id": "scada-42"}
    healthy = {"values": [0.1, 0.1, 0.1, 0.1], "reading_id": "scada-42"}
    for stream, reading in (("line-A", faulty), ("line-B", healthy)):
        reply = await client.post("/v1/score", json={"stream_id": stream, "reading": reading})
        assert reply.status_code == 200, reply.text
    ambiguous = await post(client, {"label": "anomaly", "reading_ids": ["scada-42"]})
    assert ambiguous.status_code == 409
    assert ambiguous.headers["content-type"] == "application/problem+json"
    assert "'scada-42' (streams line-A, line-B)" in ambiguous.json()["detail"]
    assert "stream_id" in ambiguous.json()["detail"]
    chosen = await post(
        client, {"label": "anomaly", "reading_ids": ["scada-42"], "stream_id": "line-A"}
    )
    assert chosen.status_code == 201, chosen.text
    (stored,) = chosen.json()["labels"]
    assert stored["stream_id"] == "line-A" and stored["error"] == pytest.approx(9 / 4)
    elsewhere = await post(
        client, {"label": "normal", "reading_ids": ["scada-42"], "stream_id": "line-C"}
    )
    assert elsewhere.status_code == 404 and "in stream 'line-C'" in elsewhere.json()["detail"]
    misplaced = await post(
        client,
        {
            "label": "normal",
            "stream_id": "line-A",
            "time_range": {
                "stream_id": "line-A",
                "start": "2020-01-01T00:00:00Z",
                "end": "2030-01-01T00:00:00Z",
            },
        },
    )
    assert misplaced.status_code == 422 and "stream_id scopes reading_ids" in misplaced.text
    queue = (await client.get("/v1/feedback/review-queue", headers=OPERATOR)).json()
    listed = [(r["stream_id"], r["reading_id"]) for r in queue["alerts"] + queue["audit_sample"]]
    assert ("line-B", "scada-42") in listed  # line-A's reading 42 is labelled, not line-B's


async def test_unknown_or_expired_reading_id_is_404_naming_it(client: Any) -> None:
    scored = await score(client, "pump-1", np.zeros((1, 4)))
    response = await post(
        client,
        {"label": "normal", "reading_ids": [scored["results"][0]["reading_id"], "no-such-id"]},
    )
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "'no-such-id'" in response.json()["detail"]
    listed = (await client.get("/v1/feedback", headers=OPERATOR)).json()
    assert listed["total"] == 0  # nothing of a refused request is stored


async def test_expired_reading_is_404(make_client: Any) -> None:
    client = await make_client(api_keys=API_KEYS, recent_retention_s=0.001)
    scored = await score(client, "pump-1", np.zeros((1, 4)))
    await asyncio.sleep(0.01)
    response = await post(
        client, {"label": "normal", "reading_ids": [scored["results"][0]["reading_id"]]}
    )
    assert response.status_code == 404
    assert "retention" in response.json()["detail"]


async def test_a_reading_scored_before_a_restart_is_404_saying_so(make_client: Any) -> None:
    """Its 404 blamed only the retention and the buffer's size, a minute after scoring: an
    operator could not tell that the restart had let it go."""
    before = await make_client(api_keys=API_KEYS)
    scored = await score(before, "pump-1", np.zeros((1, 4)))
    after = await make_client(api_keys=API_KEYS)  # the same store, a new process
    response = await post(
        after, {"label": "normal", "reading_ids": [scored["results"][0]["reading_id"]]}
    )
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert "scored before this process started at 20" in detail, detail
    assert "send the readings themselves" in detail


async def test_carried_readings_are_scored_on_the_spot(client: Any) -> None:
    rng = np.random.default_rng(1)
    values = readings(rng, 5)
    named = [dict(zip(["s0", "s1", "s2", "s3"], row, strict=True)) for row in values.tolist()]
    response = await post(
        client,
        {
            "label": "normal",
            "readings": {
                "values": named,
                "stream_id": "pump-9",
                "timestamps": [f"2026-01-01T00:00:0{i}Z" for i in range(5)],
            },
        },
    )
    assert response.status_code == 201, response.text
    labels = response.json()["labels"]
    np.testing.assert_allclose([lab["error"] for lab in labels], errors_of(values), rtol=1e-5)
    assert labels[2]["reading_time"] == "2026-01-01T00:00:02Z"
    assert {lab["source"] for lab in labels} == {"readings"}


async def test_windowed_model_labels_readings_with_a_full_window(
    make_client: Any, tmp_path: Path, write_test_artifact: Any
) -> None:
    models = tmp_path / "windowed"
    write_test_artifact(models, window=3)
    client = await make_client(api_keys=API_KEYS, models_dir=models)
    too_few = await post(client, {"label": "normal", "readings": {"values": [[0.0] * 4] * 2}})
    assert too_few.status_code == 422
    assert "3 consecutive readings" in too_few.json()["detail"]
    values = [[0.0] * 4, [2.0] * 4, [1.0] * 4, [1.0] * 4]
    response = await post(client, {"label": "normal", "readings": {"values": values}})
    assert response.status_code == 201, response.text
    # Reading 2 is expected at mean(0, 2) = 1 → error 0; reading 3 at mean(2, 1) = 1.5 → 0.25.
    assert [lab["error"] for lab in response.json()["labels"]] == pytest.approx([0.0, 0.25])


@pytest.mark.parametrize(
    ("body", "field", "index"),
    [
        ({"label": "normal"}, "body", None),
        (
            {"label": "normal", "reading_ids": ["a"], "readings": {"values": [[0] * 4]}},
            "body",
            None,
        ),
        ({"label": "maybe", "reading_ids": ["a"]}, "label", None),
        ({"label": "normal", "readings": {"values": [[0, 0, 0]]}}, "readings.values", 0),
        (
            {"label": "normal", "readings": {"values": [[0] * 4, {"s0": 1, "bogus": 2}]}},
            "readings.values",
            1,
        ),
        ({"label": "normal", "reading_ids": []}, "reading_ids", None),
    ],
)
async def test_bad_feedback_is_a_problem_naming_the_field(
    client: Any, body: dict[str, Any], field: str, index: int | None
) -> None:
    response = await post(client, body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["status"] == 422
    fields = [(e["field"], e["reading_index"]) for e in problem.get("errors", [])]
    assert any(f.startswith(field) and i == index for f, i in fields), fields


async def test_a_reversed_time_range_is_empty(client: Any) -> None:
    """Well formed (the schema cannot order two fields), so not a 422: it selects nothing,
    answered as an empty range is (404), saying why."""
    window = {"stream_id": "a", "start": 10, "end": 5}
    response = await post(client, {"label": "normal", "time_range": window})
    assert response.status_code == 404, response.text
    assert "before time_range.start" in response.json()["detail"]


async def test_a_refused_body_says_what_is_wrong_in_its_detail(client: Any) -> None:
    """Many clients show a problem's detail and nothing else: it names the first problems,
    and a field in the wrong place is called unknown, not "extra input"."""
    misplaced = {"label": "normal", "model": "test-plant", "readings": {"values": [[0.1] * 4]}}
    response = await post(client, misplaced)
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["field"] == "model"
    assert "model: unknown field" in body["detail"]
    many = {"label": "sometimes", "note": 5, "reading_ids": [], "colour": "red", "size": 1}
    detail = (await post(client, many)).json()["detail"]
    assert (
        detail.startswith("5 problem(s) with the request: ") and "(and 2 more in errors)" in detail
    )


async def test_nan_values_are_refused(client: Any) -> None:
    response = await client.post(
        "/v1/feedback",
        content=b'{"label": "normal", "readings": {"values": [[NaN, 0, 0, 0]]}}',
        headers={**OPERATOR, "content-type": "application/json"},
    )
    assert response.status_code in {400, 422}
    assert (await client.get("/v1/feedback", headers=OPERATOR)).json()["total"] == 0


async def test_time_range_labels_every_retained_reading_of_the_stream(client: Any) -> None:
    base = 1_800_000_000.0
    for stream in ("line-a", "line-b"):
        body = {
            "stream_id": stream,
            "readings": [{"values": [0.1] * 4, "timestamp": base + i} for i in range(10)],
        }
        assert (await client.post("/v1/score", json=body)).status_code == 200
    response = await post(
        client,
        {
            "label": "normal",
            "time_range": {"stream_id": "line-a", "start": base + 2, "end": base + 5},
        },
    )
    assert response.status_code == 201, response.text
    labels = response.json()["labels"]
    assert [lab["reading_time"] for lab in labels] == [
        f"2027-01-15T08:00:0{i}Z" for i in range(2, 6)
    ]
    assert {lab["stream_id"] for lab in labels} == {"line-a"}
    empty = await post(
        client,
        {"label": "normal", "time_range": {"stream_id": "line-a", "start": 0, "end": 10}},
    )
    assert empty.status_code == 404 and "line-a" in empty.json()["detail"]


async def test_listing_filters_and_pages(client: Any) -> None:
    for i in range(5):
        label = "anomaly" if i % 2 else "normal"
        response = await post(
            client,
            {"label": label, "readings": {"values": [[float(i)] * 4], "stream_id": f"s{i % 2}"}},
        )
        assert response.status_code == 201
    page = (await client.get("/v1/feedback?limit=2", headers=OPERATOR)).json()
    assert page["total"] == 5 and len(page["items"]) == 2
    assert [item["error"] for item in page["items"]] == [16.0, 9.0]  # newest first
    second = await client.get(
        f"/v1/feedback?limit=2&cursor={page['next_cursor']}", headers=OPERATOR
    )
    assert [item["error"] for item in second.json()["items"]] == [4.0, 1.0]
    last = await client.get(
        f"/v1/feedback?limit=2&cursor={second.json()['next_cursor']}", headers=OPERATOR
    )
    assert [item["error"] for item in last.json()["items"]] == [0.0]
    assert last.json()["next_cursor"] is None
    anomalies = (await client.get("/v1/feedback?label=anomaly", headers=ADMIN)).status_code
    assert anomalies == 403  # listing is a feedback-scope operation
    anomalies_page = (await client.get("/v1/feedback?label=anomaly", headers=OPERATOR)).json()
    assert anomalies_page["total"] == 2
    by_stream = (await client.get("/v1/feedback?stream_id=s0", headers=OPERATOR)).json()
    assert by_stream["total"] == 3
    by_author = (await client.get("/v1/feedback?author=nobody", headers=OPERATOR)).json()
    assert by_author["total"] == 0
    bad = await client.get("/v1/feedback?limit=0", headers=OPERATOR)
    assert bad.status_code == 422


async def test_review_queue_mixes_alerts_with_an_unbiased_audit_sample(client: Any) -> None:
    rng = np.random.default_rng(2)
    quiet = await score(client, "line-q", readings(rng, 60, noise=0.3))
    loud = await score(client, "line-l", np.full((8, 4), 3.0))
    queue = (await client.get("/v1/feedback/review-queue", headers=OPERATOR)).json()
    quiet_ids = {r["reading_id"] for r in quiet["results"]}
    alert_ids = {r["reading_id"] for r in loud["results"] if r["alert"]}
    assert alert_ids and {r["reading_id"] for r in queue["alerts"]} == alert_ids
    assert len(queue["audit_sample"]) == 5
    assert {r["reading_id"] for r in queue["audit_sample"]} <= quiet_ids
    assert queue["size"] == len(alert_ids) + 5 and queue["more_alerts"] is False
    text = (await client.get("/metrics")).text
    sizes = [
        s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "anomaly_review_queue_size"
    ]
    assert sizes == [queue["size"]]
    # Labelled readings leave the queue.
    response = await post(client, {"label": "anomaly", "reading_ids": sorted(alert_ids)})
    assert response.status_code == 201
    queue = (await client.get("/v1/feedback/review-queue", headers=OPERATOR)).json()
    assert queue["alerts"] == []


@pytest.mark.parametrize(
    ("value", "sensor", "field"),
    [
        (2e15, 3, "readings.values[3]"),
        (1e20, 3, "readings.values[3]"),
        (1e39, 0, "readings.values[0]"),
    ],
)
async def test_carried_values_beyond_the_models_range_are_refused_naming_the_reading(
    client: Any, value: float, sensor: int, field: str
) -> None:
    """As the scoring endpoint refuses them: 1e39 overflows float32 on the way in; 2e15 and
    1e20 are further from the training mean than 1e15 of its standard deviations (1e20's
    squared error would overflow too), refused naming the sensor that holds them."""
    carried = [0.0, 0.0, 0.0, 0.0]
    carried[sensor] = value
    body = {"label": "normal", "readings": {"values": [[0, 0, 0, 0], carried]}}
    response = await post(client, body)
    assert response.status_code == 422, response.text
    first = response.json()["errors"][0]
    assert (first["field"], first["reading_index"]) == (field, 1)
    assert (await client.get("/v1/feedback", headers=OPERATOR)).json()["total"] == 0
    scored = await client.post(
        "/v1/score", json={"stream_id": "s", "readings": [[0, 0, 0, 0], carried]}
    )
    assert scored.status_code == 422
    assert scored.json()["errors"][0]["field"] == f"values[{sensor}]"


async def test_datetimes_without_time_zone_are_refused(client: Any) -> None:
    """As the scoring endpoint refuses ISO timestamps without a zone: no silent UTC guess."""
    window = {"stream_id": "s", "start": "2026-01-01T08:00:00", "end": "2026-01-01T09:00:00Z"}
    naive_range = await post(client, {"label": "normal", "time_range": window})
    assert naive_range.status_code == 422
    assert "start" in str(naive_range.json()["errors"])
    carried = {"values": [[0, 0, 0, 0]], "timestamps": ["2026-01-01T08:00:00"]}
    assert (await post(client, {"label": "normal", "readings": carried})).status_code == 422
    listing = await client.get(
        "/v1/feedback", params={"since": "2026-01-01T08:00:00"}, headers=OPERATOR
    )
    assert listing.status_code == 422


async def test_reading_times_no_date_can_show_are_refused_before_anything_is_stored(
    client: Any,
) -> None:
    """Such a time once made the label listing fail for good after the label was committed."""
    far = "9999-12-31T23:59:59-14:00"
    scored = await client.post(
        "/v1/score", json={"stream_id": "s", "reading": {"values": [0, 0, 0, 0], "timestamp": 1e20}}
    )
    assert scored.status_code == 422 and "timestamp" in scored.text
    carried = {"values": [[0, 0, 0, 0]], "timestamps": [far]}
    refused = await post(client, {"label": "normal", "readings": carried})
    assert refused.status_code == 422 and "timestamps" in refused.text
    window = {"stream_id": "s", "start": "2026-01-01T08:00:00Z", "end": far}
    assert (await post(client, {"label": "normal", "time_range": window})).status_code == 422
    listing = await client.get("/v1/feedback", headers=OPERATOR)
    assert listing.status_code == 200 and listing.json()["total"] == 0
    queue = await client.get("/v1/feedback/review-queue", headers=OPERATOR)
    assert queue.status_code == 200


def test_a_stored_time_no_date_can_show_is_listed_without_one() -> None:
    assert as_datetime(1e20) is None
    assert as_datetime(None) is None
    moment = as_datetime(1_767_225_600.0)
    assert moment is not None and moment.year == 2026


async def test_out_of_range_cursor_and_slashed_stream_ids_are_422(client: Any) -> None:
    huge = await client.get("/v1/feedback", params={"cursor": 10**30}, headers=OPERATOR)
    assert huge.status_code == 422 and huge.json()["status"] == 422
    window = {"stream_id": "a/b", "start": "2026-01-01T08:00:00Z", "end": "2026-01-01T09:00:00Z"}
    slashed = await post(client, {"label": "normal", "time_range": window})
    assert slashed.status_code == 422 and "stream_id" in str(slashed.json()["errors"])


async def test_review_items_show_top_sensors_observed_and_expected_as_the_reply_did(
    make_client: Any,
) -> None:
    """The queue keeps one bit per sensor, not the reconstruction: what it shows must still
    equal what the score reply said the model expected."""
    client = await make_client(api_keys=API_KEYS, review_audit_size=0, top_k_sensors=2)
    values = np.array([[0.5, -4.0, 3.0, 0.1]] * 5)
    scored = await score(client, "pump-7", values)
    replied = scored["results"][-1]["top_sensors"]
    queue = await client.get(
        "/v1/feedback/review-queue", params={"stream_id": "pump-7"}, headers=OPERATOR
    )
    assert queue.status_code == 200, queue.text
    newest = queue.json()["alerts"][0]
    assert newest["reading_id"] == scored["results"][-1]["reading_id"]
    shown = [(s["sensor"], s["observed"], s["reconstructed"]) for s in newest["sensors"]]
    assert shown == [
        (t["sensor"], t["observed"], pytest.approx(t["reconstructed"], abs=1e-5)) for t in replied
    ]
    assert [s["sensor"] for s in newest["sensors"]] == ["s1", "s2"]
    other = await client.get(
        "/v1/feedback/review-queue", params={"stream_id": "pump-8"}, headers=OPERATOR
    )
    assert other.json()["alerts"] == []


async def test_review_items_show_no_expected_value_where_the_error_does_not_give_it_back(
    tmp_path: Path, make_client: Any
) -> None:
    """Over a window the per-sensor error is the window's mean, not the latest reading's:
    the observed value less it is no reconstruction, so the queue shows none (the test model
    over a window reconstructs each reading as the window's mean)."""
    build_test_artifact(tmp_path / "m", window=3)
    client = await make_client(
        models_dir=tmp_path / "m", api_keys=API_KEYS, review_audit_size=0, top_k_sensors=2
    )
    swinging = np.array([[0.5, -4.0, 3.0, 0.1], [-0.5, 4.0, -3.0, -0.1]] * 5)  # far from its mean
    scored = await score(client, "pump-7", swinging)
    assert any(r["alert"] for r in scored["results"]) and scored["results"][-1]["top_sensors"]
    queue = await client.get(
        "/v1/feedback/review-queue", params={"stream_id": "pump-7"}, headers=OPERATOR
    )
    sensors = queue.json()["alerts"][0]["sensors"]
    assert [s["sensor"] for s in sensors] == ["s1", "s2"]
    assert all(s["reconstructed"] is None and s["observed"] is not None for s in sensors)


@pytest.mark.parametrize(
    ("window", "family", "residual", "shown"),
    [(1, None, None, True), (1, "autoencoder", "squares", True), (1, "vae", None, True),
     (3, None, None, False), (1, "cva", None, False), (1, "dpca", None, False),
     (1, "autoencoder", "whitened", False), (1, "vae", "whitened", False)],
)  # fmt: skip
def test_which_models_the_queue_shows_an_expected_value_for(
    window: int, family: str | None, residual: str | None, shown: bool, tmp_path: Path
) -> None:
    manifest = load_artifact(build_test_artifact(tmp_path / "m")).manifest
    training = {**manifest.training} | ({} if family is None else {"family": family})
    training |= {} if residual is None else {"residual": residual}
    changed = manifest.model_copy(update={"window": window, "training": training})
    assert reconstructs_the_reading(changed) is shown
    # A score reply shows the reconstruction of a network scoring its squares, any window.
    network = family not in ("cva", "dpca") and residual != "whitened"
    assert changed.expects_readings is network
