"""Two store instances on one PostgreSQL, as two replicas would hold them, writing at once:
the constraints, not any one process's lock, keep idempotency, one vote per reading, one
open pending and gapless threshold versions."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
import pytest

from service.calibration.records import LabelFilter, NewLabel
from service.calibration.replicas import LABEL_CHANNEL, announced_labels
from service.calibration.sql import SqlFeedbackStore
from service.calibration.store import IdempotencyConflict

pytestmark = pytest.mark.integration
T = TypeVar("T")
THREADS = 8


@pytest.fixture
def replicas(postgres_url: str) -> Iterator[tuple[SqlFeedbackStore, SqlFeedbackStore]]:
    first, second = SqlFeedbackStore(postgres_url), SqlFeedbackStore(postgres_url)
    yield first, second
    first.close()
    second.close()


def at_once(calls: list[Callable[[], T]]) -> list[T | BaseException]:
    """Run every call in its own thread, released together; results (or errors) in order."""
    barrier = threading.Barrier(len(calls))
    results: list[T | BaseException] = [RuntimeError("not run")] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except BaseException as exc:  # noqa: BLE001 (handed back to the test)
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def label(kind: str = "normal", reading_id: str | None = "r1", error: float = 0.5) -> NewLabel:
    return NewLabel(
        model="plant", model_version="1", label=kind,  # type: ignore[arg-type]
        error=error, sensor_errors=(error,), threshold_value=1.0, threshold_version=1,
        source="reading_id" if reading_id else "readings", stream_id="s", reading_id=reading_id,
    )  # fmt: skip


def test_a_client_label_id_is_written_once_across_replicas(
    replicas: tuple[SqlFeedbackStore, SqlFeedbackStore],
) -> None:
    calls = [
        lambda s=replicas[i % 2]: s.submit_labels(
            [label(reading_id=None)], author="ops", client_label_id="same", content_hash="h"
        )
        for i in range(THREADS)
    ]
    results = at_once(calls)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    submissions = [r for r in results if not isinstance(r, BaseException)]
    assert len({s.id for s in submissions}) == 1
    assert sum(not s.replayed for s in submissions) == 1
    assert replicas[0].count_labels(LabelFilter()) == 1


def test_a_reused_id_with_other_content_conflicts_on_every_replica(
    replicas: tuple[SqlFeedbackStore, SqlFeedbackStore],
) -> None:
    calls = [
        lambda s=replicas[i % 2], i=i: s.submit_labels(
            [label(reading_id=None)], author="ops", client_label_id="x", content_hash=f"h{i}"
        )
        for i in range(THREADS)
    ]
    results = at_once(calls)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert all(isinstance(r, IdempotencyConflict) for r in results if isinstance(r, Exception))


def test_threshold_versions_have_no_gap_and_no_duplicate(
    replicas: tuple[SqlFeedbackStore, SqlFeedbackStore],
) -> None:
    """Both replicas start (each persists the manifest's threshold unless one is there)
    while admins on both set thresholds by hand."""
    results = at_once(
        [
            lambda s=store: s.ensure_threshold("plant", "1", value=1.0, reason="m")
            for store in replicas
        ]
        + [
            lambda s=replicas[i % 2], i=i: s.append_threshold(
                "plant",
                "1",
                value=1.0 + i / 100,
                baseline=1.0,
                source="manual",
                reason="r",
                author=f"a{i}",
                statistics={},
            )  # fmt: skip
            for i in range(THREADS)
        ]
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    history = replicas[1].threshold_history("plant")
    assert [v.version for v in history] == list(range(1, len(history) + 1))
    assert sum(v.source == "manual" for v in history) == THREADS
    # A start that finds a version keeps it: the manifest's threshold is written by the
    # first start only, and not at all when a hand-set version won the race.
    assert sum(v.source == "manifest" for v in history) <= 1
    assert len(history) - THREADS == sum(v.source == "manifest" for v in history)
    assert replicas[0].newest_versions() == {"plant": len(history)}


def test_one_open_pending_per_model(replicas: tuple[SqlFeedbackStore, SqlFeedbackStore]) -> None:
    current = replicas[0].ensure_threshold("plant", "1", value=1.0, reason="m")
    results = at_once(
        [
            lambda s=replicas[i % 2], i=i: s.create_pending(
                "plant",
                "1",
                candidate=2.0 + i,
                current=current,
                relative_change=1.0,
                reason="r",
                statistics={},
            )  # fmt: skip
            for i in range(THREADS)
        ]
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    statuses = [p.status for p in replicas[1].list_pending("plant")]
    assert statuses.count("pending") == 1 and len(statuses) == THREADS


def test_one_vote_per_reading_across_replicas(
    replicas: tuple[SqlFeedbackStore, SqlFeedbackStore],
) -> None:
    """Many normals and one anomaly for the same reading at once: the reading is contested,
    whichever commits last; another reading's normals count once, by the latest label."""
    calls = [
        lambda s=replicas[i % 2], i=i: s.submit_labels(
            [label("anomaly" if i == 3 else "normal", "r1"), label("normal", "r2", 0.1 * i)],
            author="ops",
            client_label_id=None,
            content_hash="h",
        )
        for i in range(THREADS)
    ]
    results = at_once(calls)
    assert not [r for r in results if isinstance(r, BaseException)]
    sample = replicas[0].normal_sample("plant", "1", since=0, limit=100)
    r2 = [
        lab for lab in replicas[1].list_labels(LabelFilter(), limit=100) if lab.reading_id == "r2"
    ]
    latest = max(r2, key=lambda lab: lab.id)
    assert sample.label_ids == (latest.id,)
    assert sample.errors == (latest.error,)


def test_every_label_of_a_large_submission_is_announced(postgres_url: str) -> None:
    """The leader's label trigger counts what the store announces on ``anomaly_labels``.
    A submission larger than one insert page is written by several INSERT statements in
    one transaction; PostgreSQL folds identical notifications of a transaction into one,
    so statements of equal size must still announce distinct payloads."""
    store = SqlFeedbackStore(postgres_url)
    try:
        with psycopg.connect(postgres_url, autocommit=True) as listener:
            listener.execute(f"LISTEN {LABEL_CHANNEL}")
            count = 2500  # pages of 1000, 1000 and 500 rows
            store.submit_labels(
                [label(reading_id=f"r{i}") for i in range(count)],
                author="ops",
                client_label_id=None,
                content_hash="big",
            )
            notes = list(listener.notifies(timeout=2.0))
    finally:
        store.close()
    assert sum(announced_labels(note.payload) for note in notes) == count
