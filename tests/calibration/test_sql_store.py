"""The feedback store (service/calibration/sql) on both backends: idempotent submissions,
one vote per reading, versions, pendings, runs; and the upgrade of a SQLite store written
before the migrations moved to Alembic. PostgreSQL cases are marked integration and start
their own server (tests/integration/postgres_support.py)."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from legacy_store_support import MIGRATIONS as LEGACY_MIGRATIONS
from legacy_store_support import write_legacy_store

from service.calibration.records import (
    LEARNING_FREEZE,
    LabelFilter,
    NewLabel,
    NewRun,
    content_fingerprint,
)
from service.calibration.sql import SqlFeedbackStore
from service.calibration.sql.migrate import alembic_config, head_revision, upgrade
from service.calibration.sql.schema import metadata
from service.calibration.store import (
    FeedbackStore,
    IdempotencyConflict,
    PendingAlreadyDecided,
    PendingNotFound,
    StoreError,
    StoreUnavailable,
    ThresholdVersionNotFound,
)

HEAD = int(head_revision())


class FakeClock:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def label(
    error: float, kind: str = "normal", reading_id: str | None = None, stream: str = "s1"
) -> NewLabel:
    return NewLabel(
        model="plant",
        model_version="1",
        label=kind,  # type: ignore[arg-type]
        error=error,
        sensor_errors=(error, error),
        threshold_value=1.0,
        threshold_version=1,
        source="reading_id" if reading_id else "readings",
        stream_id=stream,
        reading_id=reading_id,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new empty store of each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[SqlFeedbackStore]:
    s = SqlFeedbackStore(store_url, clock=clock)
    yield s
    s.close()


SqliteOpener = Callable[[Path], SqlFeedbackStore]


@pytest.fixture
def open_sqlite(clock: FakeClock) -> Iterator[SqliteOpener]:
    opened: list[SqlFeedbackStore] = []

    def open_(path: Path) -> SqlFeedbackStore:
        opened.append(SqlFeedbackStore(f"sqlite:///{path}", clock=clock))
        return opened[-1]

    yield open_
    for s in opened:
        s.close()


def test_implements_protocol(store: SqlFeedbackStore) -> None:
    assert isinstance(store, FeedbackStore)


def test_the_revisions_make_the_schema_the_queries_are_written_against(
    store: SqlFeedbackStore,
) -> None:
    """service/calibration/sql/schema.py describes what the newest revision leaves."""
    inspector = sa.inspect(store.engine)
    found = {
        table: {column["name"] for column in inspector.get_columns(table)}
        for table in inspector.get_table_names()
        if table != "alembic_version"
    }
    assert found == {table.name: set(table.columns.keys()) for table in metadata.tables.values()}


def test_wal_full_sync_and_every_revision(open_sqlite: SqliteOpener, tmp_path: Path) -> None:
    store = open_sqlite(tmp_path / "store.sqlite3")
    assert store.schema_version() == HEAD
    conn = sqlite3.connect(tmp_path / "store.sqlite3")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == f"{HEAD:04d}"
    conn.close()
    # synchronous is per connection: check the store's own.
    with store.engine.connect() as own:
        assert own.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


def test_reopen_keeps_data_and_does_not_rerun_migrations(
    open_sqlite: SqliteOpener, tmp_path: Path
) -> None:
    path = tmp_path / "s.sqlite3"
    first = open_sqlite(path)
    first.submit_labels([label(0.5)], author="ops", client_label_id="a", content_hash="h")
    first.close()
    second = open_sqlite(path)
    assert second.count_labels(LabelFilter()) == 1
    assert second.schema_version() == HEAD


@pytest.mark.parametrize("upto", [1, 2, 3])
def test_a_store_written_before_alembic_is_upgraded_in_place(
    open_sqlite: SqliteOpener, tmp_path: Path, clock: FakeClock, upto: int
) -> None:
    """A store the previous build wrote (its numbered migrations up to ``upto``) opens with
    its rows kept, only the missing revisions run, and the new constraints hold on it."""
    path = tmp_path / f"old-{upto}.sqlite3"
    conn = write_legacy_store(path, upto=upto)
    conn.execute("INSERT INTO submissions VALUES (1, 'kept', 'h', 'ops', 0)")
    for i, (reading, kind) in enumerate([("r1", "normal"), ("r1", "normal"), ("r2", "anomaly")]):
        conn.execute(
            "INSERT INTO labels (submission_id, model, model_version, label, error, "
            "sensor_errors, threshold_value, threshold_version, source, stream_id, reading_id, "
            "author, created_at) VALUES (1, 'plant', '1', ?, ?, '[0.5, 0.5]', 1.0, 1, "
            "'reading_id', 's1', ?, 'ops', ?)",
            (kind, 0.5 + i, reading, clock.now),
        )
    conn.execute(
        "INSERT INTO threshold_versions VALUES ('plant', 1, '1', 1.0, 1.0, 'manifest', 'm', "
        "'system', '{}', 0), ('plant', 2, '1', 1.1, 1.0, 'manual', 'h', 'ops', '{}', 1)"
    )
    conn.commit()
    conn.close()
    store = open_sqlite(path)
    assert store.schema_version() == HEAD
    assert store.count_labels(LabelFilter()) == 3
    found = store.find_submission("kept")
    assert found is not None and len(found[1].labels) == 3
    # One vote per reading over the old rows: r1's latest label counts, r2 is an anomaly.
    assert store.normal_sample("plant", "1", since=0, limit=10).errors == (1.5,)
    assert store.labelled_readings("plant", [("s1", "r1"), ("s1", "r2"), ("s1", "r3")]) == {
        ("s1", "r1"),
        ("s1", "r2"),
    }
    assert [v.version for v in store.threshold_history("plant")] == [1, 2]
    appended = store.append_threshold(
        "plant", "1", value=1.2, baseline=1.0, source="manual", reason="r", author="a",
        statistics={},
    )  # fmt: skip
    assert appended.version == 3
    with pytest.raises(IdempotencyConflict):
        store.submit_labels([label(0.1)], author="o", client_label_id="kept", content_hash="x")


def test_labels_written_before_the_flags_get_them_from_their_errors(
    open_sqlite: SqliteOpener, tmp_path: Path, clock: FakeClock
) -> None:
    path = tmp_path / "v2.sqlite3"
    conn = write_legacy_store(path, upto=2)
    conn.execute("INSERT INTO submissions VALUES (1, NULL, 'h', 'ops', 0)")
    for error in (0.5, 2.0):  # threshold 1.0: the second was an anomaly when scored
        conn.execute(
            "INSERT INTO labels (submission_id, model, model_version, label, error, "
            "sensor_errors, threshold_value, threshold_version, source, author, created_at) "
            "VALUES (1, 'plant', '1', 'normal', ?, '[0.5, 0.5]', 1.0, 1, 'reading_id', 'ops', ?)",
            (error, clock.now),
        )
    conn.commit()
    conn.close()
    store = open_sqlite(path)
    sample = store.normal_sample("plant", "1", since=0, limit=10)
    assert sample.errors == (0.5, 2.0) and sample.flagged == (False, True)
    assert sample.representative == (False, False)


def test_refuses_store_from_newer_build(open_sqlite: SqliteOpener, tmp_path: Path) -> None:
    legacy = tmp_path / "legacy-new.sqlite3"
    write_legacy_store(legacy, upto=len(LEGACY_MIGRATIONS)).close()
    conn = sqlite3.connect(legacy)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"\[99\]"):
        open_sqlite(legacy)
    path = tmp_path / "new.sqlite3"
    open_sqlite(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="revision 9999"):
        open_sqlite(path)


def test_scored_flags_are_kept_per_label(store: SqlFeedbackStore) -> None:
    flagged_by_alert = NewLabel(
        model="plant", model_version="1", label="normal", error=0.8, sensor_errors=(0.8, 0.8),
        threshold_value=1.0, threshold_version=1, source="reading_id", reading_id="r1",
        scored_anomaly=False, scored_alert=True,
    )  # fmt: skip
    store.submit_labels(
        [flagged_by_alert, label(1.5), label(0.5)], author="ops", client_label_id=None,
        content_hash="h",
    )  # fmt: skip
    sample = store.normal_sample("plant", "1", since=0, limit=10)
    assert sample.flagged == (True, True, False)  # alert; 1.5 above its threshold; neither
    assert sample.representative == (False, True, True)
    stored = store.list_labels(LabelFilter(), limit=10)
    assert {(x.error, x.scored_anomaly, x.scored_alert) for x in stored} == {
        (0.8, False, True), (1.5, True, False), (0.5, False, False),
    }  # fmt: skip


def test_idempotent_replay_and_conflict(store: SqlFeedbackStore) -> None:
    first = store.submit_labels(
        [label(0.5), label(0.6)], author="ops", client_label_id="c-1", content_hash="h1"
    )
    assert not first.replayed and len(first.labels) == 2
    again = store.submit_labels(
        [label(0.5), label(0.6)], author="ops", client_label_id="c-1", content_hash="h1"
    )
    assert again.replayed
    assert again.id == first.id
    assert [lab.id for lab in again.labels] == [lab.id for lab in first.labels]
    assert store.count_labels(LabelFilter()) == 2
    with pytest.raises(IdempotencyConflict, match="c-1"):
        store.submit_labels([label(0.9)], author="ops", client_label_id="c-1", content_hash="h2")
    assert store.count_labels(LabelFilter()) == 2
    found = store.find_submission("c-1")
    assert found is not None and found[0] == "h1" and found[1].id == first.id


def test_without_client_id_every_submission_is_new(store: SqlFeedbackStore) -> None:
    store.submit_labels([label(0.5)], author="ops", client_label_id=None, content_hash="h")
    store.submit_labels([label(0.5)], author="ops", client_label_id=None, content_hash="h")
    assert store.count_labels(LabelFilter()) == 2


def test_content_fingerprint_is_order_insensitive_for_keys() -> None:
    assert content_fingerprint({"a": 1, "b": [1, 2]}) == content_fingerprint({"b": [1, 2], "a": 1})
    assert content_fingerprint({"a": 1}) != content_fingerprint({"a": 2})


def test_list_filters_and_pagination(store: SqlFeedbackStore, clock: FakeClock) -> None:
    for i in range(5):
        clock.now += 10
        kind = "anomaly" if i % 2 else "normal"
        store.submit_labels(
            [label(float(i), kind)], author=f"op{i % 2}", client_label_id=None, content_hash="h"
        )
    page1 = store.list_labels(LabelFilter(), limit=2)
    assert [lab.error for lab in page1] == [4.0, 3.0]
    page2 = store.list_labels(LabelFilter(), limit=2, before_id=page1[-1].id)
    assert [lab.error for lab in page2] == [2.0, 1.0]
    assert [lab.error for lab in store.list_labels(LabelFilter(label="anomaly"), limit=10)] == [
        3.0,
        1.0,
    ]
    assert store.count_labels(LabelFilter(author="op0")) == 3
    since = store.list_labels(LabelFilter(since=1_000_030.0), limit=10)
    assert sorted(lab.error for lab in since) == [2.0, 3.0, 4.0]


def test_normal_sample_excludes_confirmed_anomalies_and_bounds_window(
    store: SqlFeedbackStore, clock: FakeClock
) -> None:
    store.submit_labels(
        [label(9.0, reading_id="old")], author="o", client_label_id=None, content_hash="h"
    )
    clock.now += 100
    store.submit_labels(
        [label(float(i), reading_id=f"r{i}") for i in range(6)],
        author="o",
        client_label_id=None,
        content_hash="h",
    )
    store.submit_labels(
        [label(3.0, "anomaly", reading_id="r3")], author="o", client_label_id=None, content_hash="h"
    )
    store.submit_labels(
        [label(1.0, reading_id="r1")], author="p", client_label_id=None, content_hash="h"
    )  # the same reading confirmed twice counts once
    store.submit_labels(
        [label(3.0, reading_id="r3")], author="o", client_label_id=None, content_hash="h"
    )  # a later normal does not take the anomaly back (docs/usage.md)
    sample = store.normal_sample("plant", "1", since=clock.now - 50, limit=100)
    assert sample.errors == (0.0, 2.0, 4.0, 5.0, 1.0)  # old one outside, r3 contested
    assert sample.sensor_errors[0] == (0.0, 0.0)
    capped = store.normal_sample("plant", "1", since=0, limit=2)
    assert capped.errors == (5.0, 1.0)  # the newest two
    assert store.normal_sample("plant", "2", since=0, limit=100).errors == ()


def test_the_score_a_labelled_reading_had_comes_back_with_it(store: SqlFeedbackStore) -> None:
    """A label records its reading's smoothed score (what a smoothed model's threshold
    applies to); one without (as written before revision 0007) comes back as NaN."""
    scored = replace(label(2.0, reading_id="a"), score=1.25)
    store.submit_labels(
        [scored, label(3.0, reading_id="b")], author="o", client_label_id=None, content_hash="h"
    )
    sample = store.normal_sample("plant", "1", since=0, limit=10)
    assert sample.errors == (2.0, 3.0)
    assert sample.scores[0] == 1.25 and math.isnan(sample.scores[1])
    stored = store.list_labels(LabelFilter(), limit=10)
    assert sorted((lab.error, lab.score) for lab in stored)[0] == (2.0, 1.25)


def test_labels_kept_out_of_learning_are_stored_but_never_sampled(
    store: SqlFeedbackStore,
) -> None:
    """A label kept out of learning (a maintenance window, the learning freeze) is listed
    with its reason; it is no normal for the sample, and as a reading's latest label it
    also stands in for that reading's earlier ones (one vote per reading)."""
    kept_out = replace(label(7.0, reading_id="r1"), excluded_from_learning="window 3")
    store.submit_labels(
        [label(1.0, reading_id="r1"), label(2.0, reading_id="r2"), label(4.0)],
        author="o",
        client_label_id=None,
        content_hash="h",
    )
    written = store.submit_labels(
        [kept_out, replace(label(5.0), excluded_from_learning="learning freeze")],
        author="o",
        client_label_id="k",
        content_hash="k",
    )
    assert [lab.excluded_from_learning for lab in written.labels] == [
        "window 3",
        "learning freeze",
    ]
    found = store.find_submission("k")
    assert found is not None and found[1].labels == written.labels
    listed = store.list_labels(LabelFilter(), limit=10)
    assert [lab.excluded_from_learning for lab in listed[:2]] == ["learning freeze", "window 3"]
    assert store.normal_sample("plant", "1", since=0, limit=100).errors == (2.0, 4.0)


def test_labels_the_learning_freeze_kept_out_come_beside_the_sample(
    store: SqlFeedbackStore,
) -> None:
    """They measure how often normal operation exceeds the threshold; a maintenance
    window's do not. A frozen reading labelled again by its id stays, released; one
    confirmed an anomaly leaves."""
    frozen = replace(
        label(5.0, reading_id="r1"), source="time_range", excluded_from_learning=LEARNING_FREEZE
    )
    store.submit_labels(
        [
            label(1.0),
            frozen,
            replace(frozen, reading_id="r2", error=6.0),
            replace(frozen, reading_id="r3", error=8.0),
            replace(label(7.0), excluded_from_learning="maintenance window 3"),
        ],
        author="o",
        client_label_id=None,
        content_hash="h",
    )
    sample = store.normal_sample("plant", "1", since=0, limit=10)
    assert sample.errors == (1.0,)
    assert sample.frozen.errors == (5.0, 6.0, 8.0)
    assert sample.frozen.released == (False, False, False)
    assert len(set(sample.frozen.spans)) == 1 and sample.frozen.spans[0] == sample.spans[0]
    unread = store.normal_sample("plant", "1", since=0, limit=10, with_frozen=False)
    assert unread.errors == sample.errors and unread.frozen.errors == ()
    store.submit_labels(
        [label(5.0, reading_id="r1"), label(8.0, "anomaly", reading_id="r3")],
        author="o",
        client_label_id=None,
        content_hash="i",
    )
    released = store.normal_sample("plant", "1", since=0, limit=10)
    assert released.errors == (1.0, 5.0)  # the label given to r1's id, learned from
    assert released.frozen.errors == (5.0, 6.0)
    assert released.frozen.released == (True, False)


def test_a_reading_in_two_ranges_is_one_frozen_label_released_for_good(
    store: SqlFeedbackStore,
) -> None:
    """Labelled in two overlapping ranges it counts once (by its newest); released by a
    label given to its id, it stays released when a later range takes it in again, and
    that label by id is still learned from."""
    frozen = replace(
        label(5.0, reading_id="r1"), source="time_range", excluded_from_learning=LEARNING_FREEZE
    )

    def submit(labels: list[NewLabel], key: str) -> None:
        store.submit_labels(labels, author="o", client_label_id=None, content_hash=key)

    submit([label(1.0), frozen], "range A")
    submit([label(2.0), replace(frozen, error=5.5)], "range B")
    twice = store.normal_sample("plant", "1", since=0, limit=10)
    assert twice.frozen.errors == (5.5,) and twice.frozen.released == (False,)
    submit([label(5.0, reading_id="r1")], "by id")
    released = store.normal_sample("plant", "1", since=0, limit=10)
    assert released.frozen.errors == (5.5,) and released.frozen.released == (True,)
    assert released.errors == (1.0, 2.0, 5.0)
    submit([label(3.0), replace(frozen, error=5.7)], "range C")
    again = store.normal_sample("plant", "1", since=0, limit=10)
    assert again.frozen.errors == (5.7,) and again.frozen.released == (True,)
    assert again.errors == (1.0, 2.0, 5.0, 3.0)


def test_frozen_labels_cover_the_samples_stretch_of_time(store: SqlFeedbackStore) -> None:
    """When the window holds more labels than the sample takes, frozen labels older than
    its oldest are left out: they belong to readings the sample no longer holds."""
    frozen = replace(
        label(5.0, reading_id="r1"), source="time_range", excluded_from_learning=LEARNING_FREEZE
    )
    for i, labels in enumerate([[label(0.5), frozen], [label(1.0), label(2.0)]]):
        store.submit_labels(labels, author="o", client_label_id=None, content_hash=str(i))
    assert store.normal_sample("plant", "1", since=0, limit=3).frozen.errors == (5.0,)
    capped = store.normal_sample("plant", "1", since=0, limit=2)
    assert capped.errors == (1.0, 2.0) and capped.frozen.errors == ()


def test_a_reading_is_its_stream_and_id(store: SqlFeedbackStore) -> None:
    """Clients reuse their own ids across streams (per-device counters): an anomaly confirmed
    for one stream's reading 42 withheld another stream's confirmed-normal reading 42 from
    recalibration, and hid it from the review queue."""
    store.submit_labels(
        [
            label(5.0, "anomaly", reading_id="42", stream="a"),
            label(0.5, reading_id="42", stream="b"),
        ],
        author="o",
        client_label_id=None,
        content_hash="h",
    )
    assert store.normal_sample("plant", "1", since=0, limit=10).errors == (0.5,)
    pairs = [("a", "42"), ("c", "42"), ("b", "7")]
    assert store.labelled_readings("plant", pairs) == {("a", "42")}


def test_threshold_versions_are_numbered_and_restored(store: SqlFeedbackStore) -> None:
    first = store.ensure_threshold("plant", "1", value=1.0, reason="manifest")
    assert (first.version, first.source, first.baseline) == (1, "manifest", 1.0)
    assert store.ensure_threshold("plant", "1", value=1.0, reason="again").version == 1
    second = store.append_threshold(
        "plant",
        "1",
        value=1.1,
        baseline=1.0,
        source="recalibration",
        reason="r",
        author="system",
        statistics={"n_samples": 60},
    )
    assert second.version == 2 and second.statistics == {"n_samples": 60}
    assert store.latest_threshold("plant", "1") == second
    # A new model version starts from its manifest, numbering continues per model.
    other = store.ensure_threshold("plant", "2", value=2.0, reason="manifest v2")
    assert other.version == 3 and other.value == 2.0
    assert [v.version for v in store.threshold_history("plant")] == [1, 2, 3]
    assert store.threshold_version("plant", 2).value == 1.1
    # The newest a person chose, of one artifact (model version and manifest threshold):
    # recalibration's version 2 is none, nor is model version 2's manifest for version 1.
    assert store.latest_chosen_threshold("plant", "1", 1.0) == first
    assert store.latest_chosen_threshold("plant", "1", 1.0, before=1) is None
    assert store.latest_chosen_threshold("plant", "1", 1.5) is None  # another artifact
    assert store.latest_chosen_threshold("plant", "2", 2.0) == other
    with pytest.raises(ThresholdVersionNotFound):
        store.threshold_version("plant", 9)
    with pytest.raises(StoreError):
        store.append_threshold(
            "plant", "1", value=0.0, baseline=1.0, source="manual", reason="", author="a",
            statistics={},
        )  # fmt: skip


def test_another_artifact_under_the_same_version_starts_from_its_own_manifest(
    store: SqlFeedbackStore,
) -> None:
    """A model retrained in place (the same name and version, another manifest threshold):
    what was recalibrated for the model it replaced does not carry over to it."""
    store.ensure_threshold("plant", "1", value=1.0, reason="manifest")
    store.append_threshold(
        "plant", "1", value=1.1, baseline=1.0, source="recalibration", reason="r",
        author="system", statistics={},
    )  # fmt: skip
    assert store.ensure_threshold("plant", "1", value=1.0, reason="manifest").value == 1.1
    retrained = store.ensure_threshold("plant", "1", value=0.7, reason="manifest")
    assert (retrained.version, retrained.value, retrained.baseline) == (3, 0.7, 0.7)
    assert retrained.source == "manifest"
    assert retrained.statistics == {"replaced_baseline": 1.0}
    assert "another artifact" in retrained.reason and "0.7" in retrained.reason
    assert store.ensure_threshold("plant", "1", value=0.7, reason="manifest").version == 3


def test_pinning_back_to_an_older_model_version_never_lowers_the_version(
    store: SqlFeedbackStore,
) -> None:
    store.ensure_threshold("plant", "1", value=1.0, reason="manifest")
    store.append_threshold(
        "plant", "1", value=1.1, baseline=1.0, source="recalibration", reason="r",
        author="system", statistics={},
    )  # fmt: skip
    assert store.ensure_threshold("plant", "2", value=2.0, reason="manifest v2").version == 3
    back = store.ensure_threshold("plant", "1", value=1.0, reason="manifest")
    assert (back.version, back.model_version, back.value, back.baseline) == (4, "1", 1.1, 1.0)
    assert back.source == "restore" and back.statistics == {"restored_version": 2}
    assert store.ensure_threshold("plant", "1", value=1.0, reason="manifest").version == 4
    forward = store.ensure_threshold("plant", "2", value=2.0, reason="manifest v2")
    assert (forward.version, forward.value) == (5, 2.0)


def test_pending_approve_reject_and_supersede(store: SqlFeedbackStore) -> None:
    current = store.ensure_threshold("plant", "1", value=1.0, reason="manifest")
    p1 = store.create_pending(
        "plant", "1", candidate=2.0, current=current, relative_change=1.0, reason="r",
        statistics={"n_samples": 80},
    )  # fmt: skip
    p2 = store.create_pending(
        "plant", "1", candidate=2.2, current=current, relative_change=1.2, reason="r",
        statistics={},
    )  # fmt: skip
    assert store.open_pending("plant") == p2
    assert [p.status for p in store.list_pending("plant")] == ["pending", "superseded"]
    with pytest.raises(PendingAlreadyDecided):
        store.approve_pending(p1.id, author="admin", reason="")
    applied = store.approve_pending(p2.id, author="admin", reason="checked the plant")
    assert (applied.version, applied.value, applied.source, applied.author) == (
        2,
        2.2,
        "approval",
        "admin",
    )
    assert applied.baseline == 1.0
    assert applied.statistics["pending_id"] == p2.id
    decided = store.list_pending("plant")[0]
    assert (decided.status, decided.applied_version, decided.decided_by) == (
        "approved",
        2,
        "admin",
    )
    p3 = store.create_pending(
        "plant", "1", candidate=5.0, current=applied, relative_change=1.3, reason="r",
        statistics={},
    )  # fmt: skip
    rejected = store.reject_pending(p3.id, author="admin", reason="fault, not drift")
    assert rejected.status == "rejected" and "fault, not drift" in rejected.reason
    assert store.latest_threshold("plant", "1") == applied
    with pytest.raises(PendingNotFound):
        store.reject_pending(12345, author="a", reason="")


def test_new_version_supersedes_stale_pending(store: SqlFeedbackStore) -> None:
    current = store.ensure_threshold("plant", "1", value=1.0, reason="manifest")
    pending = store.create_pending(
        "plant", "1", candidate=2.0, current=current, relative_change=1.0, reason="r",
        statistics={},
    )  # fmt: skip
    store.append_threshold(
        "plant", "1", value=1.05, baseline=1.0, source="manual", reason="by hand", author="a",
        statistics={},
    )  # fmt: skip
    assert store.open_pending("plant") is None
    assert store.list_pending("plant")[0].id == pending.id
    assert store.list_pending("plant")[0].status == "superseded"


def test_runs_are_recorded_newest_first(store: SqlFeedbackStore, clock: FakeClock) -> None:
    for outcome in ("insufficient", "applied"):
        store.record_run(NewRun(
            model="plant", model_version="1", trigger="interval", outcome=outcome,  # type: ignore[arg-type]
            current_value=1.0, candidate=None, n_samples=3, message=outcome,
            statistics={"n": 3}, threshold_version=None, pending_id=None, started_at=clock.now,
        ))  # fmt: skip
    runs = store.list_runs("plant")
    assert [r.outcome for r in runs] == ["applied", "insufficient"]
    assert runs[0].statistics == {"n": 3}
    assert store.list_runs("other") == []


def test_rejected_transaction_leaves_nothing(store: SqlFeedbackStore) -> None:
    bad = NewLabel(
        model="plant", model_version="1", label="maybe",  # type: ignore[arg-type]
        error=1.0, sensor_errors=(1.0,), threshold_value=1.0, threshold_version=1,
        source="readings",
    )  # fmt: skip
    with pytest.raises(StoreError, match="refused"):
        store.submit_labels([label(0.1), bad], author="o", client_label_id="x", content_hash="h")
    assert store.count_labels(LabelFilter()) == 0
    assert store.find_submission("x") is None


def test_a_store_that_cannot_be_opened_names_its_path(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    with pytest.raises(StoreUnavailable, match=r"cannot open the feedback store .*not-a-folder"):
        SqlFeedbackStore(f"sqlite:///{blocker / 'feedback.sqlite3'}")
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database file, not at all" * 100)
    with pytest.raises(StoreUnavailable, match="garbage.sqlite3: file is not a database"):
        SqlFeedbackStore(f"sqlite:///{garbage}")


def test_revision_0007_downgrades_and_upgrades_again_keeping_ids_unreused(tmp_path: Path) -> None:
    """Rolling an image back past 0007 means downgrading the store (docs/operations.md):
    SQLite rebuilds the labels table, which must keep AUTOINCREMENT (a deleted label's id is
    never given to another)."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")

    def labels_table() -> tuple[list[str], str]:
        with engine.connect() as conn:
            columns = [str(r[1]) for r in conn.execute(sa.text("PRAGMA table_info(labels)"))]
            sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'labels'"))
            return columns, str(sql.scalar())

    with engine.begin() as conn:
        upgrade(conn, "test")
    assert "score" in labels_table()[0]
    with engine.begin() as conn:
        command.downgrade(alembic_config(conn), "0006")
    columns, sql = labels_table()
    assert "score" not in columns and "AUTOINCREMENT" in sql
    with engine.begin() as conn:
        upgrade(conn, "test")
    assert "score" in labels_table()[0]
    engine.dispose()
