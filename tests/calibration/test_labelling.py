"""The labelling desk: the three selectors, idempotent submits, pages and the review queue,
on an in-memory store, without HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from rooms_support import Rooms, open_rooms

from service.calibration import labelling
from service.calibration.labelling import LabelConflict
from service.calibration.records import LabelFilter
from service.calibration.selections import (
    CarriedReadings,
    EmptyTimeRange,
    NothingToLabel,
    ReadingIds,
    TimeRange,
    UnknownReading,
    UnscoredReading,
)
from service.errors import BatchTooLarge, InvalidReading


@pytest.fixture
async def rooms(tmp_path: Path) -> AsyncIterator[Rooms]:
    async with open_rooms(tmp_path) as built:
        yield built


def carried(values: np.ndarray, model: str = "flat", **extra: object) -> CarriedReadings:
    return CarriedReadings(
        model=model,
        stream_id=extra.get("stream_id"),  # type: ignore[arg-type]
        values=np.asarray(values, dtype=np.float32),
        timestamps=extra.get("timestamps"),  # type: ignore[arg-type]
    )


async def test_labels_by_reading_id_carry_what_the_scorer_decided(rooms: Rooms) -> None:
    outcome, ids = rooms.score("pump-1", [[0.1, 0.2, 0.3, 0.4], [3.0, 3.0, 3.0, 3.0]])
    submission = await rooms.desk.submit(
        ReadingIds(ids), "normal", "checked", author="olga", client_label_id=None, content_hash="h"
    )
    assert [label.error for label in submission.labels] == outcome.errors.tolist()
    assert [label.scored_anomaly for label in submission.labels] == [False, True]
    assert {label.source for label in submission.labels} == {"reading_id"}
    assert [label.reading_id for label in submission.labels] == ids
    assert rooms.stored_counts == [2]
    assert (
        rooms.registry.get_sample_value(
            "anomaly_feedback_labels_total", {"model": "flat", "label": "normal"}
        )
        == 2.0
    )
    with pytest.raises(UnknownReading, match="'nope'"):
        rooms.desk.labels_for(ReadingIds(["nope"]), "normal", None)


async def test_a_client_label_id_replays_and_refuses_other_content(rooms: Rooms) -> None:
    _, ids = rooms.score("pump-1", np.zeros((2, 4)))
    first = await rooms.desk.submit(
        ReadingIds(ids), "normal", None, author="olga", client_label_id="c-1", content_hash="h1"
    )
    assert not first.replayed
    replay = await rooms.desk.replay("c-1", "h1")
    assert replay is not None and replay.replayed and replay.id == first.id
    assert await rooms.desk.replay("c-2", "h1") is None
    with pytest.raises(LabelConflict, match="use a new id"):
        await rooms.desk.replay("c-1", "other content")
    again = await rooms.desk.submit(
        ReadingIds(ids), "normal", None, author="olga", client_label_id="c-1", content_hash="h1"
    )
    assert again.replayed and rooms.stored_counts == [2]  # a replay is not counted again


async def test_a_time_range_labels_every_retained_reading_of_the_stream(rooms: Rooms) -> None:
    _, ids = rooms.score("pump-2", np.ones((3, 4)))
    rooms.score("other", np.ones((2, 4)))
    labels = rooms.desk.labels_for(TimeRange("pump-2", 0.0, 4e9, "flat"), "anomaly", None)
    assert [label.reading_id for label in labels] == ids
    assert {label.source for label in labels} == {"time_range"}
    with pytest.raises(EmptyTimeRange):
        rooms.desk.labels_for(TimeRange("pump-2", 0.0, 1.0, "flat"), "anomaly", None)


async def test_carried_readings_are_scored_as_the_scoring_endpoint_scores_them(
    rooms: Rooms,
) -> None:
    """The same readings sent to the scoring endpoint on a fresh stream of a windowed model
    and carried in feedback get the same errors, per-sensor errors and anomaly flags."""
    values = np.random.default_rng(3).normal(scale=1.5, size=(9, 4)).astype(np.float32)
    outcome, _ = rooms.score("fresh", values, model="windowed")
    labels = rooms.desk.labels_for(
        carried(values, "windowed", timestamps=[float(i) for i in range(9)]), "normal", None
    )
    assert outcome.warming == 2 and len(labels) == 7
    assert [label.error for label in labels] == outcome.errors.tolist()
    assert [label.scored_anomaly for label in labels] == outcome.anomalies.tolist()
    scored = rooms.recent.stream_readings("fresh", 0.0, 4e9, model="windowed")
    assert [label.sensor_errors for label in labels] == [
        tuple(float(v) for v in r.squared_errors) for r in scored if r.squared_errors is not None
    ]
    assert [label.reading_time for label in labels] == [float(i) for i in range(2, 9)]
    assert {(label.threshold_value, label.threshold_version) for label in labels} == {(1.0, 1)}


async def test_carried_readings_are_refused_as_the_scoring_endpoint_refuses_them(
    rooms: Rooms,
) -> None:
    with pytest.raises(NothingToLabel, match="at least 3"):
        rooms.desk.labels_for(carried(np.zeros((2, 4)), "windowed"), "normal", None)
    with pytest.raises(InvalidReading, match="beyond the model's range") as beyond:
        rooms.desk.labels_for(carried(np.full((1, 4), 1e30)), "normal", None)
    assert [e.field for e in beyond.value.errors] == [f"readings.values[{j}]" for j in range(4)]
    too_many = rooms.settings.max_batch_readings + 1
    with pytest.raises(BatchTooLarge):
        rooms.desk.labels_for(carried(np.zeros((too_many, 4))), "normal", None)
    assert len(rooms.recent) == 0  # nothing was recorded as scored


async def test_ids_of_readings_that_only_warmed_a_stream_up_are_refused_naming_them(
    rooms: Rooms,
) -> None:
    """All of them: nothing to label; some among scored ones: refused whole, saying which,
    so what a request labels never depends on which of its ids happened to be scored."""
    _, ids = rooms.score("warm", np.zeros((4, 4)), model="windowed")  # the first 2 warm up
    with pytest.raises(NothingToLabel, match=f"{ids[0]!r}, {ids[1]!r} were not scored"):
        rooms.desk.labels_for(ReadingIds(ids[:2]), "normal", None)
    with pytest.raises(UnscoredReading, match=f"{ids[1]!r} were not scored") as mixed:
        rooms.desk.labels_for(ReadingIds([ids[1], ids[2], ids[3]]), "normal", None)
    assert "send the 2 scored reading(s) without them" in str(mixed.value)
    assert len(rooms.desk.labels_for(ReadingIds(ids[2:]), "normal", None)) == 2


async def test_label_pages_run_newest_first_with_a_cursor(rooms: Rooms) -> None:
    _, ids = rooms.score("pump-3", np.zeros((5, 4)))
    for reading_id in ids:
        await rooms.desk.submit(
            ReadingIds([reading_id]), "normal", None, author="o", client_label_id=None,
            content_hash="h",
        )  # fmt: skip
    first = await rooms.desk.list_labels(LabelFilter(model="flat"), limit=3, cursor=None)
    assert first.total == 5 and [label.reading_id for label in first.items] == ids[:1:-1]
    second = await rooms.desk.list_labels(LabelFilter(), limit=3, cursor=first.next_cursor)
    assert [label.reading_id for label in second.items] == ids[1::-1]
    assert second.next_cursor is None


async def test_the_review_queue_leaves_out_labelled_readings(rooms: Rooms) -> None:
    _, ids = rooms.score("pump-4", np.zeros((6, 4)))
    queue = await rooms.desk.review_queue("flat")
    assert {r.reading_id for r in queue.audit_sample} == set(ids)
    await rooms.desk.submit(
        ReadingIds(ids[:4]), "normal", None, author="o", client_label_id=None, content_hash="h"
    )
    queue = await rooms.desk.review_queue("flat")
    assert {r.reading_id for r in queue.audit_sample} == set(ids[4:])
    assert rooms.registry.get_sample_value("anomaly_review_queue_size", {"model": "flat"}) == 2.0


async def label_each(rooms: Rooms, readings: list[str], stream: str) -> None:
    await rooms.desk.submit(
        ReadingIds(readings, stream_id=stream), "normal", None, author="o",
        client_label_id=None, content_hash="h",
    )  # fmt: skip


async def test_the_queue_lists_unlabelled_alerts_beyond_the_labelled_newest(
    rooms: Rooms,
) -> None:
    """The limit applies to unlabelled alerts: after the 100 listed are labelled, the older
    ones come up, and the queue says when more are waiting than it lists."""
    rooms.score("pump-5", np.full((130, 4), 3.0))
    queue = await rooms.desk.review_queue("flat")
    alerts = [r.reading_id for r in queue.alerts]
    assert len(alerts) == 100 and queue.more_alerts
    older = [r.reading_id for r in rooms.recent.alerts(model="flat", limit=1000)[100:]]
    assert older, "the test needs alerts beyond the first page"
    await label_each(rooms, alerts, "pump-5")
    queue = await rooms.desk.review_queue("flat")
    assert [r.reading_id for r in queue.alerts] == older and not queue.more_alerts
    size = rooms.registry.get_sample_value("anomaly_review_queue_size", {"model": "flat"})
    assert size == len(older) + len(queue.audit_sample)
    await label_each(rooms, older, "pump-5")
    queue = await rooms.desk.review_queue("flat", stream_id="pump-5")
    assert queue.alerts == [] and not queue.more_alerts


async def test_the_queue_scans_a_bounded_number_of_labelled_alerts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the scan's bound it lists what it found and says more may be waiting, rather
    than reading every retained alert against the store."""
    monkeypatch.setattr(labelling, "REVIEW_PAGE_MIN", 1)
    monkeypatch.setattr(labelling, "REVIEW_SCAN_PAGES", 2)
    async with open_rooms(tmp_path, review_alert_limit=5) as rooms:
        await scan_past_the_bound(rooms)


async def scan_past_the_bound(rooms: Rooms) -> None:
    rooms.score("pump-6", np.full((40, 4), 3.0))
    newest = [r.reading_id for r in rooms.recent.alerts(model="flat", limit=1000)]
    assert len(newest) > 12
    await label_each(rooms, newest[:7], "pump-6")
    queue = await rooms.desk.review_queue("flat")
    assert [r.reading_id for r in queue.alerts] == newest[7:10] and queue.more_alerts
    await label_each(rooms, newest[7:10], "pump-6")
    queue = await rooms.desk.review_queue("flat")
    assert queue.alerts == [] and queue.more_alerts  # not known past 10: "may be waiting"


async def test_a_queue_limited_to_no_alerts_lists_none_and_says_none_wait(tmp_path: Path) -> None:
    """ANOMALY_REVIEW_ALERT_LIMIT=0 leaves alerts out of the queue: "more waiting" whenever
    one existed would send the operator after a list that never shows them."""
    async with open_rooms(tmp_path, review_alert_limit=0) as rooms:
        rooms.score("pump-6", np.full((40, 4), 3.0))
        assert rooms.recent.alerts(model="flat", limit=10)
        queue = await rooms.desk.review_queue("flat")
        assert queue.alerts == [] and not queue.more_alerts
