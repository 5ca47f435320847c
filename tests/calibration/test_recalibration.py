"""One recalibration step and the scheduled run, on an in-memory store, without HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import build_test_artifact
from rooms_support import Rooms, open_rooms

from service.calibration.evidence import model_memory
from service.calibration.records import LEARNING_FREEZE, LabelSource, NewLabel
from service.calibration.selections import CarriedReadings, ReadingIds, TimeRange
from service.scoring.manifest import ScoreSmoothing
from service.scoring.smoothing import make_smoother


@pytest.fixture
async def rooms(tmp_path: Path) -> AsyncIterator[Rooms]:
    async with open_rooms(tmp_path, recalibration_max_change=0.5) as built:
        yield built


async def confirm_normal(rooms: Rooms, n: int, noise: float, model: str = "flat") -> None:
    """``n`` carried readings labelled normal; on ``flat`` their errors are noise² · χ²(4)/4."""
    values = noise * np.random.default_rng(n).normal(size=(n, 4))
    await rooms.desk.submit(
        CarriedReadings(model, "pump", values.astype(np.float32), None),
        "normal",
        None,
        author="olga",
        client_label_id=None,
        content_hash=f"{model}-{n}-{noise}",
    )


def normal_label(
    model: str, error: float, *, source: LabelSource, stream_id: str | None = None
) -> NewLabel:
    """A normal label of a 4-sensor reading, as the store is handed one, at threshold 1."""
    return NewLabel(
        model=model,
        model_version="1",
        label="normal",
        error=error,
        sensor_errors=(error,) * 4,
        threshold_value=1.0,
        threshold_version=1,
        source=source,
        stream_id=stream_id,
    )


async def test_a_step_applies_the_candidate_through_the_keeper(rooms: Rooms) -> None:
    await confirm_normal(rooms, 3000, noise=0.58)  # its q99 lies near 1.1: enough to show it
    run = await rooms.recalibration.recalibrate("flat", trigger="test")
    assert run.outcome == "applied" and run.n_samples == 3000, run.message
    assert run.statistics["flagged_share_from"] == "representative labels"
    snapshot = rooms.keeper.board.get("flat")
    assert snapshot.version == run.threshold_version == 2
    stored = rooms.store.threshold_version("flat", 2)
    assert (stored.value, stored.source, stored.author) == (
        snapshot.value,
        "recalibration",
        "recalibrator",
    )
    assert 0.8 < snapshot.value < 1.5
    assert rooms.keeper.board.get("windowed").version == 1  # another model's is untouched


async def test_a_threshold_too_high_is_lowered(rooms: Rooms) -> None:
    await confirm_normal(rooms, 3000, noise=0.45)  # 0.06% above 1, their q99 near 0.67
    run = await rooms.recalibration.recalibrate("flat", trigger="test")
    assert run.outcome == "applied", run.message
    assert run.statistics["exceedance_from"] == "representative labels"
    assert -0.4 < run.statistics["relative_change"] < -0.25


async def test_steps_under_the_cap_do_not_add_up_without_an_admin(tmp_path: Path) -> None:
    """Labels that drift a little each time (or one key carrying slightly faulty readings
    batch after batch) once moved the threshold +16%, then +12%: 30% from the manifest's
    with nobody approving. The second step now waits, measured from the last value a
    person chose."""
    async with open_rooms(tmp_path) as rooms:  # the default 20% cap
        await confirm_normal(rooms, 3000, noise=0.59)  # q99 near 1.16
        first = await rooms.recalibration.recalibrate("flat", trigger="test")
        assert first.outcome == "applied", first.message
        await confirm_normal(rooms, 3000, noise=0.64)  # q99 of the window near 1.30
        second = await rooms.recalibration.recalibrate("flat", trigger="test")
        assert second.outcome == "pending", second.message
        assert second.statistics["relative_change"] < 0.2  # a small step on its own
        assert (second.statistics["anchor"], second.statistics["anchor_version"]) == (1.0, 1)
        assert "the last one a person chose" in second.message
        assert rooms.keeper.board.get("flat").version == first.threshold_version
        # An admin's approval is a choice: steps are measured from it from then on.
        assert second.pending_id is not None
        approved = await rooms.keeper.approve(second.pending_id, reason="checked", author="ada")
        third = await rooms.recalibration.recalibrate("flat", trigger="test")
        assert third.statistics["anchor_version"] == approved.version, third.message
        assert third.outcome == "unchanged", third.message  # the same labels back it


async def test_a_model_version_served_again_keeps_the_chosen_threshold(tmp_path: Path) -> None:
    """Serving a model version again re-appends its latest value as a ``restore``: nobody
    chose it, so the next step is still measured from the manifest's."""
    async with open_rooms(tmp_path) as rooms:
        for source in ("recalibration", "restore"):
            rooms.store.append_threshold(
                "flat", "1", value=1.16, baseline=1.0, source=source,
                reason=source, author="system", statistics={},
            )  # fmt: skip
        await rooms.keeper.sync_from_store()
        await confirm_normal(rooms, 5000, noise=0.626)  # q99 near 1.30: +12%, but +30%
        run = await rooms.recalibration.recalibrate("flat", trigger="test")
        assert run.outcome == "pending", run.message
        assert run.statistics["anchor_version"] == 1


async def test_a_rollback_to_an_automatic_value_keeps_the_anchor_it_was_capped_from(
    tmp_path: Path,
) -> None:
    """Rolling back to "the last good version" of a poisoning, itself a recalibration step,
    must not make that step the new starting point: the cap still counts from the manifest's
    value, so the next step the same labels propose waits for an admin."""
    async with open_rooms(tmp_path) as rooms:
        await confirm_normal(rooms, 3000, noise=0.59)  # q99 near 1.16
        first = await rooms.recalibration.recalibrate("flat", trigger="test")
        assert first.outcome == "applied" and first.threshold_version is not None
        back = await rooms.keeper.rollback(
            "flat", first.threshold_version, reason="last good", author="ada"
        )
        assert (back.statistics["anchor"], back.statistics["anchor_version"]) == (1.0, 1)
        await confirm_normal(rooms, 3000, noise=0.64)  # q99 of the window near 1.30
        second = await rooms.recalibration.recalibrate("flat", trigger="test")
        assert second.outcome == "pending", second.message
        assert second.statistics["anchor_version"] == 1, second.message
        # A value set by hand after the step does not count for it: the step was capped from
        # the manifest's (the newest choice *below* it), and a rollback to the rollback keeps it.
        await rooms.keeper.set_by_hand("flat", 3.0, reason="trial", author="bob")
        again = await rooms.keeper.rollback(
            "flat", first.threshold_version, reason="last good", author="ada"
        )
        assert again.statistics["anchor_version"] == 1, again.statistics
        twice = await rooms.keeper.rollback("flat", again.version, reason="again", author="ada")
        assert twice.statistics["anchor_version"] == 1, twice.statistics
        # A rollback to a value a person chose anchors there: to the manifest's, version 1.
        manifest = await rooms.keeper.rollback("flat", 1, reason="start over", author="ada")
        assert "anchor" not in manifest.statistics
        assert rooms.store.latest_chosen_threshold("flat", "1", 1.0) == manifest


async def test_a_step_back_towards_the_chosen_threshold_is_applied(tmp_path: Path) -> None:
    """A threshold already beyond the cap from the chosen one (a store from before the
    anchor) may still come back towards it on its own."""
    async with open_rooms(tmp_path) as rooms:
        stray = rooms.store.append_threshold(
            "flat", "1", value=1.5, baseline=1.0, source="recalibration",
            reason="an old step", author="recalibrator", statistics={},
        )  # fmt: skip
        await rooms.keeper.sync_from_store()
        assert rooms.keeper.board.get("flat").version == stray.version
        await confirm_normal(rooms, 5000, noise=0.614)  # q99 near 1.25: -17%, still +25%
        run = await rooms.recalibration.recalibrate("flat", trigger="test")
        assert run.outcome == "applied", run.message
        assert run.candidate is not None and run.candidate > 1.2  # beyond the cap from 1.0


async def shift_with_excursions(rooms: Rooms, length: int) -> list[str]:
    """5,000 readings of ``flat`` (almost none above its threshold) with five excursions of
    ``length`` readings, labelled normal as one time range; the ids of those in an alert."""
    rng = np.random.default_rng(1)
    values = 0.4 * rng.normal(size=(5000, 4))
    for start in range(500, 5000, 1000):
        values[start : start + length] = 1.6 * rng.normal(size=(length, 4))
    _, ids = rooms.score("pump", values)
    await rooms.desk.submit(
        TimeRange("pump", 0.0, 4e9, "flat"), "normal", None, author="olga",
        client_label_id=None, content_hash=f"shift-{length}",
    )  # fmt: skip
    readings = rooms.recent.stream_readings("pump", 0.0, 4e9)
    return [i for i, reading in zip(ids, readings, strict=True) if reading.alert]


async def test_alerts_the_learning_freeze_kept_out_do_not_lower_a_correct_threshold(
    rooms: Rooms,
) -> None:
    """Counted with the readings scored in their alerts, 0.9% of the shift lies above the
    threshold: it is right. Those readings are kept out of learning, and without them the
    rest read as a threshold too high (the step lowered it before): they count both ways,
    as the normal operation they were labelled and as the fault they may be."""
    await shift_with_excursions(rooms, 12)
    run = await rooms.recalibration.recalibrate("flat", trigger="test")
    assert run.outcome == "unchanged", run.message
    stats = run.statistics
    assert (stats["n_frozen"], stats["n_frozen_above_current"]) == (48, 28)
    assert stats["share_above_current_with_frozen"] == pytest.approx(45 / 5000)
    # Left out, the rest show it too high; counted, they hold the 1% it stands for.
    assert stats["share_above_current"] < 0.01 <= stats["share_interval_high"] < 0.015
    assert "the learning freeze kept out" in run.message and "holds the 1.00%" in run.message
    assert rooms.keeper.board.get("flat").version == 1


async def test_alerts_released_by_their_ids_count_as_normal_operation(rooms: Rooms) -> None:
    """The operator confirms each reading of the excursions' alerts normal by its id: they
    are then known to be normal operation in their range, and with 3% of it above the
    threshold, the threshold is too low (a move this large waits for an admin)."""
    alerts = await shift_with_excursions(rooms, 40)
    held = await rooms.recalibration.recalibrate("flat", trigger="test")
    assert held.outcome == "unchanged" and held.statistics["n_frozen"] == len(alerts) == 173
    await rooms.desk.submit(
        ReadingIds(alerts, "pump"), "normal", None, author="olga", client_label_id=None,
        content_hash="released",
    )  # fmt: skip
    run = await rooms.recalibration.recalibrate("flat", trigger="test")
    assert run.outcome == "pending" and run.statistics["relative_change"] > 1.0, run.message
    assert "n_frozen" not in run.statistics and run.statistics["n_measured"] == 5000
    assert run.statistics["share_interval_low"] > 0.02


@pytest.mark.parametrize(("exceedance", "outcome"), [(1.0, "applied"), (60.0, "unchanged")])
async def test_a_stretch_counts_by_its_excursions_when_they_outlast_the_errors_memory(
    tmp_path: Path, exceedance: float, outcome: str
) -> None:
    """3,000 readings in one request, 0.06% of them above the threshold: independent, they
    show it too high; when exceedances come in excursions of the calibration run's (their
    memory 60 readings, the errors' 1), the stretch is worth about 50 and shows nothing."""
    memory = {"reading": 1.0, "sensors": [1.0] * 4, "exceedance": exceedance}
    build_test_artifact(
        tmp_path / "models", name="excursive", n_calibration=20_000,
        metrics={"normal_memory": memory},
    )  # fmt: skip
    async with open_rooms(tmp_path, recalibration_max_change=0.5) as rooms:
        await confirm_normal(rooms, 3000, noise=0.45, model="excursive")
        run = await rooms.recalibration.recalibrate("excursive", trigger="test")
    assert run.outcome == outcome, run.message
    assert run.statistics["n_effective"] == pytest.approx(1 + 2999 / exceedance)


async def test_review_queue_labels_take_the_rate_from_the_retained_readings(
    rooms: Rooms,
) -> None:
    """Alerts are over-represented among labels picked from the review queue, so how often
    normal operation exceeds the threshold comes from the retained scored readings."""
    values = 0.7 * np.random.default_rng(4).normal(size=(2000, 4))  # 8.6% above 1
    outcome, ids = rooms.score("pump", values)
    flagged = [i for i, anomaly in zip(ids, outcome.anomalies.tolist(), strict=True) if anomaly]
    unflagged = [
        i for i, anomaly in zip(ids, outcome.anomalies.tolist(), strict=True) if not anomaly
    ]
    for picked in (flagged, unflagged[:40]):  # the alerts and an audit sample
        await rooms.desk.submit(
            ReadingIds(picked), "normal", None, author="olga", client_label_id=None,
            content_hash=str(len(picked)),
        )  # fmt: skip
    run = await rooms.recalibration.recalibrate("flat", trigger="test")
    assert run.statistics["exceedance_from"] == "retained scored readings", run.message
    assert run.statistics["n_measured"] == 2000
    assert run.statistics["share_above_current"] == pytest.approx(len(flagged) / 2000)
    assert run.outcome in ("applied", "pending") and run.statistics["relative_change"] > 0


async def test_review_queue_labels_alone_measure_nothing(rooms: Rooms) -> None:
    """Nothing retained (a restart, say) and every label picked from the review queue: how
    often normal operation exceeds the threshold is not measured, and it stays."""
    picked = normal_label("flat", 2.0, source="reading_id", stream_id="pump")
    rooms.store.submit_labels(
        [replace(picked, reading_id=f"r{i}") for i in range(100)],
        author="olga",
        client_label_id=None,
        content_hash="picked",
    )
    run = await rooms.recalibration.recalibrate("flat", trigger="test")
    assert run.outcome == "unchanged" and "picked from the review queue" in run.message
    assert rooms.keeper.board.get("flat").version == 1


async def test_too_few_confirmed_normals_change_nothing(rooms: Rooms) -> None:
    await confirm_normal(rooms, 10, noise=0.58)
    run = await rooms.recalibration.recalibrate("flat", trigger="test")
    assert run.outcome == "insufficient" and run.threshold_version is None
    assert rooms.keeper.board.get("flat").version == 1


async def test_the_scheduled_run_steps_every_model_and_refreshes_drift_and_review(
    rooms: Rooms,
) -> None:
    await confirm_normal(rooms, 3000, noise=0.58)
    rooms.score("pump", np.zeros((3, 4)))
    await rooms.recalibration.run_scheduled("interval")
    runs = await rooms.keeper.runs(None, limit=10)
    assert sorted((r.model, r.trigger, r.outcome) for r in runs) == [
        ("flat", "interval", "applied"),
        ("windowed", "interval", "insufficient"),
    ]
    assert rooms.registry.get_sample_value("anomaly_review_queue_size", {"model": "flat"}) == 3.0
    assert (
        rooms.registry.get_sample_value("anomaly_drift_ks_statistic", {"model": "flat"}) is not None
    )


async def test_a_threshold_on_smoothed_scores_is_recalibrated_from_the_labels_scores(
    tmp_path: Path,
) -> None:
    """The threshold applies to smoothed scores: a quantile of raw errors would loosen it
    without a word, so the candidate is the quantile of the scores the labelled readings had
    (their errors smoothed as the stream's were), counted by the smoothed scores' memory."""
    ewma = {"method": "ewma", "window": 1, "alpha": 0.3, "start": 0.4}
    build_test_artifact(tmp_path / "models", name="smooth", smoothing=ewma)
    async with open_rooms(tmp_path, recalibration_max_change=0.5) as rooms:
        await confirm_normal(rooms, 3000, noise=0.58, model="smooth")
        sample = rooms.store.normal_sample("smooth", "1", since=0.0, limit=5000)
        run = await rooms.recalibration.recalibrate("smooth", trigger="test")
    errors, scores = np.array(sample.errors), np.array(sample.scores)
    smoothed = make_smoother(ScoreSmoothing(**ewma)).update_many(errors)
    # The first 12, where the new stream's start still weighs 1% or more, record none.
    assert np.isnan(scores[:12]).all() and np.isfinite(scores[12:]).all()
    np.testing.assert_allclose(scores[12:], smoothed[12:], rtol=1e-12)
    assert run.outcome == "applied", run.message
    assert run.n_samples == 3000 - 12
    assert run.statistics["candidate"] == pytest.approx(float(np.quantile(scores[12:], 0.99)))
    assert abs(float(np.quantile(errors, 0.99)) / run.statistics["candidate"] - 1) > 0.2
    memory = model_memory(rooms.models.get("smooth"))
    assert memory is not None and memory.score is not None and memory.score > 3 * memory.reading
    assert run.statistics["n_effective"] == pytest.approx(1 + 2987 / memory.score)


async def test_frozen_labels_of_a_smoothed_model_count_by_their_scores(tmp_path: Path) -> None:
    """Its threshold is on smoothed scores: frozen labels count by theirs, not by their
    errors (here below the threshold while their scores lie above it)."""
    ewma = {"method": "ewma", "window": 1, "alpha": 0.3, "start": 0.4}
    build_test_artifact(tmp_path / "models", name="smooth", smoothing=ewma)
    async with open_rooms(tmp_path, recalibration_max_change=0.5) as rooms:
        ranged = normal_label("smooth", 0.5, source="time_range", stream_id="pump")
        frozen = replace(ranged, excluded_from_learning=LEARNING_FREEZE, scored_alert=True)
        for i in range(600):  # one each, so 600 independent readings, none above
            rooms.store.submit_labels(
                [replace(ranged, reading_id=f"u{i}", score=0.5)]
                + ([replace(frozen, reading_id=f"f{i}", score=2.0)] if i < 20 else []),
                author="olga", client_label_id=None, content_hash=str(i),
            )  # fmt: skip
        run = await rooms.recalibration.recalibrate("smooth", trigger="test")
    assert run.outcome == "unchanged", run.message
    assert (run.statistics["n_frozen"], run.statistics["n_frozen_above_current"]) == (20, 20)


async def test_readings_carried_one_by_one_record_no_smoothed_score(tmp_path: Path) -> None:
    """Each a new stream's first score, which is mostly its start: recorded, they would all
    sit at the start (for a median, exactly), as if normal operation never exceeded the
    threshold, and lower it."""
    median = {"method": "median", "window": 3, "alpha": 1.0, "start": 0.4}
    build_test_artifact(tmp_path / "models", name="smooth", smoothing=median)
    async with open_rooms(tmp_path) as rooms:
        for i, row in enumerate(np.random.default_rng(5).normal(size=(200, 4))):
            await rooms.desk.submit(
                CarriedReadings("smooth", "pump", row[None, :].astype(np.float32), None),
                "normal", None, author="olga", client_label_id=None, content_hash=str(i),
            )  # fmt: skip
        sample = rooms.store.normal_sample("smooth", "1", since=0.0, limit=5000)
        run = await rooms.recalibration.recalibrate("smooth", trigger="test")
    assert len(sample.scores) == 200 and np.isnan(sample.scores).all()
    assert run.outcome == "insufficient" and run.n_samples == 0, run.message


async def test_labels_without_a_score_are_left_out_of_a_smoothed_models_candidate(
    tmp_path: Path,
) -> None:
    ewma = {"method": "ewma", "window": 1, "alpha": 0.3}
    build_test_artifact(tmp_path / "models", name="smooth", smoothing=ewma)
    async with open_rooms(tmp_path) as rooms:
        unscored = normal_label("smooth", 50.0, source="readings")  # no score recorded
        rooms.store.submit_labels(
            [unscored] * 60, author="olga", client_label_id=None, content_hash="unscored"
        )
        run = await rooms.recalibration.recalibrate("smooth", trigger="test")
    assert run.outcome == "insufficient" and run.n_samples == 0, run.message


async def test_a_smoothed_model_that_does_not_record_its_scores_memory_proposes_nothing(
    tmp_path: Path,
) -> None:
    """An artifact from before the score's memory was recorded, its reference a sample of
    the calibration run: a labelled stretch's worth cannot be told."""
    ewma = {"method": "ewma", "window": 1, "alpha": 0.3}
    build_test_artifact(tmp_path / "models", name="smooth", smoothing=ewma, n_calibration=5000)
    async with open_rooms(tmp_path) as rooms:
        await confirm_normal(rooms, 300, noise=2.0, model="smooth")
        run = await rooms.recalibration.recalibrate("smooth", trigger="test")
    assert run.outcome == "insufficient"
    assert "ewma:0.3-smoothed scores" in run.message and "retrain" in run.message
    assert rooms.keeper.board.get("smooth").version == 1


async def test_streams_smoothed_by_the_settings_not_as_declared_propose_nothing(
    tmp_path: Path,
) -> None:
    """The threshold (and the memory recorded) are for the declared smoothing; the labels'
    scores would be the settings' smoothing's."""
    ewma = {"method": "ewma", "window": 1, "alpha": 0.3}
    build_test_artifact(tmp_path / "models", name="smooth", smoothing=ewma)
    async with open_rooms(tmp_path, smoothing_method="mean", smoothing_window=5) as rooms:
        await confirm_normal(rooms, 3000, noise=0.58, model="smooth")
        run = await rooms.recalibration.recalibrate("smooth", trigger="test")
    assert run.outcome == "insufficient", run.message
    assert "set on ewma:0.3-smoothed scores" in run.message and "mean:5" in run.message
