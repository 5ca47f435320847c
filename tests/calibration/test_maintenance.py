"""Maintenance windows: which readings a window covers, the room that keeps them in memory,
and their tables on both backends (Alembic revision 0005, with its audit trail). PostgreSQL
cases are marked integration and start their own server (tests/integration/postgres_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from legacy_store_support import write_legacy_store

from service.calibration.maintenance import MaintenanceWindows, UnknownWindow, WindowEnded
from service.calibration.records import LabelFilter, MaintenanceWindow, WindowSpec
from service.calibration.sql import SqlFeedbackStore
from service.calibration.sql.migrate import head_revision
from service.calibration.store import StoreError
from service.scoring.decision import ALERT, COOLDOWN, NORMAL, SUPPRESSED, suppress_alerts


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


BASE_WINDOW = MaintenanceWindow(
    id=1, model=None, stream_id=None, stream_prefix=None, starts_at=100.0, ends_at=200.0,
    suppress_alerts=True, exclude_from_learning=False, reason="r", author="a",
    created_at=0.0, ended_at=None, ended_by=None, end_reason=None,
)  # fmt: skip


def window(**fields: Any) -> MaintenanceWindow:
    return replace(BASE_WINDOW, **fields)


@pytest.mark.parametrize(
    ("fields", "model", "stream", "at", "covered"),
    [
        ({}, "m", "s", 100.0, True),  # the start is inside
        ({}, "m", "s", 200.0, False),  # the end is not
        ({}, "m", "s", 99.9, False),
        ({"ends_at": None}, "m", "s", 1e12, True),  # open-ended
        ({"ends_at": None, "ended_at": 150.0}, "m", "s", 150.0, False),  # ended early
        ({"model": "m"}, "other", "s", 150.0, False),
        ({"stream_id": "pump-1"}, "m", "pump-10", 150.0, False),
        ({"stream_prefix": "pump-1"}, "m", "pump-10", 150.0, True),
        ({"stream_prefix": "pump-1"}, "m", "pump-2", 150.0, False),
        ({"stream_prefix": "pump-1"}, "m", None, 150.0, False),  # carried, no stream
        ({"model": "m"}, "m", None, 150.0, True),
    ],
)
def test_what_a_window_covers(
    fields: dict[str, Any], model: str, stream: str | None, at: float, covered: bool
) -> None:
    assert window(**fields).covers(model, stream, at) is covered


def test_suppression_turns_alert_states_and_holds_back_raised_alerts() -> None:
    states = np.array([NORMAL, ALERT, ALERT, COOLDOWN], dtype=np.int8)
    out, raised, held = suppress_alerts(states, 1)
    assert out.tolist() == [NORMAL, SUPPRESSED, SUPPRESSED, COOLDOWN] and out.dtype == np.int8
    assert (raised, held) == (0, 1)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """A new empty store of each backend, with the clock it writes times from."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 's.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    clock = Clock()
    db = SqlFeedbackStore(url, clock=clock)
    yield db, clock
    db.close()


BASE_SPEC = WindowSpec(
    starts_at=1_000.0, ends_at=None, suppress_alerts=True, exclude_from_learning=False,
    reason="overhaul",
)  # fmt: skip


def spec(**fields: Any) -> WindowSpec:
    return replace(BASE_SPEC, **fields)


def test_store_writes_windows_and_their_audit_trail(store: Any) -> None:
    db, clock = store
    created = db.create_window(spec(stream_prefix="line-a."), author="alice")
    assert created.id == 1 and created.created_at == clock.now and created.ended_at is None
    clock.now += 10
    ended = db.end_window(created.id, author="bob", reason="done early")
    assert (ended.ended_at, ended.ended_by, ended.end_reason) == (clock.now, "bob", "done early")
    events = db.window_events(created.id)
    assert [(e.action, e.author, e.reason) for e in events] == [
        ("created", "alice", "overhaul"),
        ("ended", "bob", "done early"),
    ]
    assert db.list_windows(since=clock.now + 1) == []
    assert [w.id for w in db.list_windows()] == [1]


def test_store_refuses_a_window_with_no_mode_or_two_scopes(store: Any) -> None:
    db, _ = store
    with pytest.raises(StoreError, match="refused"):
        db.create_window(spec(suppress_alerts=False), author="a")
    with pytest.raises(StoreError, match="refused"):
        db.create_window(spec(stream_id="a", stream_prefix="a"), author="a")
    with pytest.raises(StoreError, match="refused"):
        db.create_window(spec(ends_at=BASE_SPEC.starts_at), author="a")
    assert db.list_windows() == []  # nothing half-written
    for window_id in (0, 1):
        assert db.window_events(window_id) == []


def test_a_store_written_before_alembic_gains_windows_and_keeps_learning(
    tmp_path: Path,
) -> None:
    """A store at the last numbered migration (3) gains the two tables and the labels column
    (revision 0005), and its labels keep being learned from (NULL exclusion)."""
    path = tmp_path / "v3.sqlite3"
    conn = write_legacy_store(path, upto=3)
    conn.execute("INSERT INTO submissions VALUES (1, NULL, 'h', 'ops', 0)")
    conn.execute(
        "INSERT INTO labels (submission_id, model, model_version, label, error, "
        "sensor_errors, threshold_value, threshold_version, source, author, created_at) "
        "VALUES (1, 'plant', '1', 'normal', 0.5, '[0.5]', 1.0, 1, 'time_range', 'ops', 5)"
    )
    conn.commit()
    conn.close()
    db = SqlFeedbackStore(f"sqlite:///{path}")
    assert db.schema_version() == int(head_revision()) >= 5
    assert db.normal_sample("plant", "1", since=0, limit=10).errors == (0.5,)
    [kept] = db.list_labels(LabelFilter(), limit=10)
    assert kept.excluded_from_learning is None
    assert db.list_windows() == []
    db.create_window(spec(), author="a")
    assert [w.reason for w in db.list_windows()] == ["overhaul"]
    db.close()


async def test_the_room_matches_from_memory_and_reloads_after_changes(store: Any) -> None:
    db, clock = store

    class Models:
        def get(self, name: str | None) -> None:
            return None

    room = MaintenanceWindows(store=db, models=Models(), clock=clock)  # type: ignore[arg-type]
    assert room.match("m", "s", clock.now) is None
    suppress = await room.create(spec(starts_at=clock.now, stream_id="s"), author="a")
    exclude = await room.create(
        spec(starts_at=clock.now, suppress_alerts=False, exclude_from_learning=True),
        author="a",
    )
    found = room.match("m", "s", clock.now)
    assert found is not None
    assert (found.suppressed_by, found.excluded_by) == (suppress.id, exclude.id)
    other = room.match("m", "t", clock.now)
    assert other is not None and (other.suppressed_by, other.excluded_by) == (None, exclude.id)
    assert {w.id for w in room.active()} == {suppress.id, exclude.id}

    await room.end(suppress.id, author="a", reason="")
    assert room.match("m", "s", clock.now + 1) == other
    with pytest.raises(WindowEnded):
        await room.end(suppress.id, author="a", reason="")
    with pytest.raises(UnknownWindow):
        await room.end(99, author="a", reason="")

    again = MaintenanceWindows(store=db, models=Models(), clock=clock)  # type: ignore[arg-type]
    await again.restore()
    assert again.match("m", "s", clock.now + 1) == other
