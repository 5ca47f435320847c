"""The threshold keeper: the one writer of thresholds, on an in-memory store."""

from __future__ import annotations

import ast
import logging
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import build_test_artifact
from rooms_support import Clock, Rooms, open_rooms

from service.calibration.keeper import Propose, ThresholdKeeper
from service.calibration.recalibrator import Candidate
from service.errors import (
    InvalidRequest,
    PendingClosed,
    PendingMissing,
    VersionMissing,
    VersionNotApplicable,
)
from service.scoring.registry import LoadedModel
from service.scoring.thresholds import ThresholdSnapshot

SERVICE = Path(__file__).resolve().parents[2] / "service"


@pytest.fixture
async def rooms(tmp_path: Path) -> AsyncIterator[Rooms]:
    async with open_rooms(tmp_path) as built:
        yield built


def candidate(outcome: str, value: float | None, change: float | None = None) -> Candidate:
    return Candidate(
        outcome=outcome,  # type: ignore[arg-type]
        current=1.0,
        value=value,
        relative_change=change,
        n_samples=60,
        message=f"test candidate: {outcome}",
        statistics={},
    )


def proposing(result: Candidate) -> Propose:
    async def propose(model: LoadedModel, current: ThresholdSnapshot, started: float) -> Candidate:
        return result

    return propose


async def test_restore_puts_each_manifest_threshold_in_force_and_persists_it(rooms: Rooms) -> None:
    for name in ("flat", "windowed"):
        assert rooms.keeper.board.get(name) == ThresholdSnapshot(1.0, 1, 1.0)
        stored = rooms.store.latest_threshold(name, "1")
        assert stored is not None and stored.source == "manifest" and stored.version == 1
    assert rooms.registry.get_sample_value("anomaly_threshold", {"model": "flat"}) == 1.0
    await rooms.keeper.restore()  # again: the stored version, not a new one
    assert rooms.keeper.board.get("flat").version == 1


async def test_set_by_hand_writes_the_store_then_the_board(rooms: Rooms) -> None:
    version = await rooms.keeper.set_by_hand("flat", 2.5, reason="test", author="ann")
    assert (version.version, version.value, version.source) == (2, 2.5, "manual")
    assert rooms.keeper.board.get("flat") == ThresholdSnapshot(2.5, 2, 1.0)
    assert rooms.store.latest_threshold("flat", "1") == version
    with pytest.raises(InvalidRequest, match="within a factor"):
        await rooms.keeper.set_by_hand("flat", 1e7, reason="typo", author="ann")
    assert rooms.keeper.board.get("flat").version == 2


async def test_rollback_appends_the_old_value_as_a_new_version(rooms: Rooms) -> None:
    await rooms.keeper.set_by_hand("flat", 3.0, reason="test", author="ann")
    rolled = await rooms.keeper.rollback("flat", 1, reason="", author="bob")
    assert (rolled.version, rolled.value, rolled.source) == (3, 1.0, "rollback")
    assert rooms.keeper.board.get("flat").version == 3
    with pytest.raises(VersionMissing):
        await rooms.keeper.rollback("flat", 99, reason="", author="bob")
    assert [v.version for v in await rooms.keeper.versions("flat")] == [1, 2, 3]


async def test_thresholds_a_person_sets_are_logged(
    rooms: Rooms, caplog: pytest.LogCaptureFixture
) -> None:
    """The log told of every recalibration run but of no hand-set value, rollback, approval
    or rejection: whoever read it could not see why scores had changed."""
    caplog.set_level(logging.INFO, logger="service.calibration.keeper")
    await rooms.keeper.set_by_hand("flat", 3.0, reason="site check", author="ann")
    await rooms.keeper.rollback("flat", 1, reason="bad labels", author="bob")
    held = await rooms.keeper.recalibrate(
        "flat", trigger="test", propose=proposing(candidate("pending", 2.0, 1.0))
    )
    assert held.pending_id is not None
    await rooms.keeper.reject(held.pending_id, reason="poisoned", author="cat")
    again = await rooms.keeper.recalibrate(
        "flat", trigger="test", propose=proposing(candidate("pending", 2.0, 1.0))
    )
    assert again.pending_id is not None
    # a reason is free text: quoted, so a newline in it cannot forge a line of the log
    await rooms.keeper.approve(again.pending_id, reason="real\nERROR forged", author="dan")
    said = [r.getMessage() for r in caplog.records if "by " in r.getMessage()]
    head = "threshold for flat:"
    assert said == [
        f"{head} version 2 = 3 (manual by ann, was version 1 = 1), reason 'site check'",
        f"{head} version 3 = 1 (rollback by bob, was version 2 = 3), reason 'bad labels'",
        f"{head} candidate 2 (pending {held.pending_id}) rejected by cat, reason 'poisoned'",
        f"{head} version 4 = 2 (approval by dan, was version 3 = 1), reason 'real\\nERROR forged'",
    ]
    assert all("\n" not in line for line in said)


async def test_an_applied_candidate_is_published_and_its_run_recorded(rooms: Rooms) -> None:
    run = await rooms.keeper.recalibrate(
        "flat", trigger="test", propose=proposing(candidate("applied", 1.1, 0.1))
    )
    assert run.outcome == "applied" and run.threshold_version == 2
    assert rooms.keeper.board.get("flat") == ThresholdSnapshot(1.1, 2, 1.0)
    assert [r.id for r in await rooms.keeper.runs("flat", limit=5)] == [run.id]
    assert (
        rooms.registry.get_sample_value(
            "anomaly_recalibration_runs_total", {"model": "flat", "outcome": "applied"}
        )
        == 1.0
    )


async def test_a_run_records_when_it_started_not_when_it_was_written(tmp_path: Path) -> None:
    clock = Clock()
    async with open_rooms(tmp_path, clock) as rooms:
        started = clock.now

        async def slow(model: LoadedModel, current: ThresholdSnapshot, at: float) -> Candidate:
            clock.now += 30.0  # sampling and fitting take time the run should account for
            return candidate("applied", 1.1, 0.1)

        run = await rooms.keeper.recalibrate("flat", trigger="test", propose=slow)
    assert (run.started_at, run.finished_at) == (started, started + 30.0)


async def test_a_held_candidate_waits_for_approval(rooms: Rooms) -> None:
    run = await rooms.keeper.recalibrate(
        "flat", trigger="test", propose=proposing(candidate("pending", 2.0, 1.0))
    )
    assert run.outcome == "pending" and run.pending_id is not None
    assert rooms.keeper.board.get("flat").version == 1  # not applied
    in_force = await rooms.keeper.in_force("flat")
    assert in_force.pending is not None and in_force.pending.id == run.pending_id
    version = await rooms.keeper.approve(run.pending_id, reason="ok", author="ann")
    assert rooms.keeper.board.get("flat") == ThresholdSnapshot(2.0, version.version, 1.0)
    with pytest.raises(PendingClosed):
        await rooms.keeper.approve(run.pending_id, reason="again", author="ann")
    with pytest.raises(PendingMissing):
        await rooms.keeper.reject(12345, reason="", author="ann")


async def test_a_failed_proposal_is_recorded_and_changes_nothing(rooms: Rooms) -> None:
    async def broken(model: LoadedModel, current: ThresholdSnapshot, started: float) -> Candidate:
        raise OSError("disk I/O error")

    with pytest.raises(OSError):
        await rooms.keeper.recalibrate("flat", trigger="test", propose=broken)
    assert rooms.keeper.board.get("flat").version == 1
    (run,) = await rooms.keeper.runs("flat", limit=5)
    assert run.outcome == "failed" and "disk I/O error" in run.message


async def test_a_reload_restores_the_stored_threshold_of_the_new_model(rooms: Rooms) -> None:
    await rooms.keeper.set_by_hand("flat", 2.0, reason="test", author="ann")
    loaded = await rooms.keeper.swap_models(lambda: rooms.models.reload("flat"))
    assert [m.name for m in loaded] == ["flat"]
    assert rooms.keeper.board.get("flat") == ThresholdSnapshot(2.0, 2, 1.0)  # same version


async def test_a_model_retrained_in_place_gets_its_own_manifest_threshold(
    rooms: Rooms, tmp_path: Path
) -> None:
    """The same name and version, another artifact (another manifest threshold): the
    threshold set by hand for the one it replaced does not score the new one."""
    await rooms.keeper.set_by_hand("flat", 2.0, reason="test", author="ann")
    shutil.rmtree(tmp_path / "models" / "flat" / "1")
    build_test_artifact(tmp_path / "models", "flat", window=1, n_sensors=4, threshold=0.5)
    await rooms.keeper.swap_models(lambda: rooms.models.reload("flat"))
    assert rooms.keeper.board.get("flat") == ThresholdSnapshot(0.5, 3, 0.5)
    stored = rooms.store.latest_threshold("flat", "1")
    assert stored is not None and stored.source == "manifest"
    with pytest.raises(VersionNotApplicable, match="another artifact"):
        await rooms.keeper.rollback("flat", 2, reason="", author="bob")  # the former one's
    assert rooms.keeper.board.get("flat").version == 3


async def test_sync_adopts_only_versions_set_for_the_artifact_it_serves(rooms: Rooms) -> None:
    """Another replica on another artifact under the same name and version (a retrain in
    place, mid-deploy) writes versions this one must not score with."""
    rooms.store.append_threshold(
        "flat", "1", value=9.0, baseline=0.3, source="manifest", reason="other artifact",
        author="system", statistics={},
    )  # fmt: skip
    await rooms.keeper.sync_from_store()
    assert rooms.keeper.board.get("flat") == ThresholdSnapshot(1.0, 1, 1.0)
    rooms.store.append_threshold(
        "flat", "1", value=1.5, baseline=1.0, source="manual", reason="ours",
        author="ann", statistics={},
    )  # fmt: skip
    await rooms.keeper.sync_from_store()
    assert rooms.keeper.board.get("flat") == ThresholdSnapshot(1.5, 3, 1.0)


def test_the_keeper_is_the_only_writer_of_thresholds() -> None:
    """Nothing in service/ but the keeper writes a ThresholdBoard or makes a snapshot."""
    writers: set[str] = set()
    for path in SERVICE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Name) and func.id == "ThresholdSnapshot":
                writers.add(path.relative_to(SERVICE).as_posix())
            if isinstance(func, ast.Attribute) and func.attr == "set":
                target = ast.unparse(func.value)
                if target.endswith(("board", "thresholds")):
                    writers.add(path.relative_to(SERVICE).as_posix())
    assert writers <= {"calibration/keeper.py"}, writers
    assert ThresholdKeeper.__module__ == "service.calibration.keeper"
