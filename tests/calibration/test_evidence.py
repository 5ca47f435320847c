"""What labelled readings are worth as evidence: normal operation's memory, the effective
size of labelled spans, and the interval on a rate counted at such sizes."""

from __future__ import annotations

import doctest
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import build_test_artifact
from rooms_support import Rooms, open_rooms

from service.calibration import evidence
from service.calibration.evidence import (
    NormalMemory,
    clopper_pearson,
    effective_size,
    exceedance_memory,
    model_memory,
    normal_memory,
    span_lengths,
)
from service.scoring.artifact import load_artifact
from service.scoring.decision import reading_errors
from service.scoring.manifest import ScoreSmoothing
from service.scoring.registry import LoadedModel
from service.scoring.smoothing import make_smoother


@pytest.fixture
async def rooms(tmp_path: Path) -> AsyncIterator[Rooms]:
    async with open_rooms(tmp_path) as built:
        yield built


def test_doctests() -> None:
    assert doctest.testmod(evidence).failed == 0


def test_clopper_pearson_edges() -> None:
    low, high = clopper_pearson(0, 100)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 100))
    low, high = clopper_pearson(100, 100)
    assert high == 1.0 and low == pytest.approx(0.025 ** (1 / 100))


def test_fractional_counts_lie_between_their_integer_neighbours() -> None:
    low, high = clopper_pearson(2.5, 40.0)
    assert clopper_pearson(2, 40)[0] < low < clopper_pearson(3, 40)[0]
    assert clopper_pearson(2, 40)[1] < high < clopper_pearson(3, 40)[1]


def test_spans_count_one_plus_their_length_beyond_one_over_the_memory() -> None:
    spans = ["a"] * 101 + ["b"] + ["c"]
    lengths = span_lengths(spans)
    assert sorted(lengths.tolist()) == [1.0, 1.0, 101.0]
    assert effective_size(lengths, 10.0) == pytest.approx(1 + 1 + 11)
    assert effective_size(lengths, 1.0) == len(spans)  # no memory: each label counts one


async def test_normal_operations_memory_comes_from_training_or_the_whole_reference(
    rooms: Rooms,
) -> None:
    """As train recorded it; else from the reference when it is the whole calibration run;
    else unknown (an older artifact whose reference is a subsample): counted at raw size."""
    model = rooms.models.get("flat")
    from_reference = model_memory(model)
    reference = model.artifact.reference_errors
    assert from_reference == normal_memory(reference, None, model.manifest.threshold.value)
    assert from_reference is not None and from_reference.exceedance is not None

    def with_manifest(**update: object) -> LoadedModel:
        manifest = model.manifest.model_copy(update=update)
        return replace(model, artifact=replace(model.artifact, manifest=manifest))

    recorded = {"normal_memory": {"reading": 7.0, "sensors": [2.0, 3.0, 4.0, 5.0]}}
    # What it does not record (the exceedances' memory, before 7 Dec 2026) from the reference.
    assert model_memory(with_manifest(metrics=recorded)) == NormalMemory(
        7.0, (2.0, 3.0, 4.0, 5.0), exceedance=from_reference.exceedance
    )
    recorded["normal_memory"]["exceedance"] = 30.0
    assert model_memory(with_manifest(metrics=recorded)) == NormalMemory(
        7.0, (2.0, 3.0, 4.0, 5.0), exceedance=30.0
    )
    subsampled = model.manifest.threshold.model_copy(update={"n_calibration": 20_000})
    assert model_memory(with_manifest(threshold=subsampled)) is None
    # A hand-edited figure that train would never write falls back, as if absent.
    for bad in (
        {"sensors": [2.0, 3.0, 4.0, 5.0]},
        {"reading": None, "sensors": [2.0, 3.0, 4.0, 5.0]},
        {"reading": 0.0, "sensors": [2.0, 3.0, 4.0, 5.0]},
        {"reading": 7.0, "sensors": [2.0, float("nan"), 4.0, 5.0]},
        {"reading": 7.0, "sensors": [2.0, 3.0]},
        {"reading": True, "sensors": [2.0, 3.0, 4.0, 5.0]},
    ):
        assert model_memory(with_manifest(metrics={"normal_memory": bad})) == from_reference


def test_the_exceedances_memory_is_that_of_whether_the_score_lies_above_the_threshold() -> None:
    """Excursions above the threshold last: a share of readings above it is worth fewer
    independent readings than their count, as a noise-like run's is not."""
    rng = np.random.default_rng(4)
    errors = rng.chisquare(1, size=(6000, 4))
    noise = normal_memory(errors, None, threshold=2.5)
    assert noise.exceedance is not None and noise.exceedance < 1.3
    for start in range(0, 6000, 600):  # ten excursions of 40 readings, on every sensor
        errors[start : start + 40] += 8.0
    memory = normal_memory(errors, None, threshold=5.0)
    assert memory.exceedance is not None and memory.exceedance > 20
    assert normal_memory(errors).exceedance is None


def test_the_memory_of_smoothed_scores_is_longer_than_the_errors() -> None:
    errors = np.random.default_rng(3).chisquare(1, size=(4000, 4))
    smoothing = ScoreSmoothing(method="ewma", window=1, alpha=0.1)
    smoothed = make_smoother(smoothing).update_many(errors.mean(axis=1))
    memory = normal_memory(errors, smoothed)
    assert memory.reading < 1.5 and memory.score is not None
    assert memory.score == pytest.approx((2 - 0.1) / 0.1, rel=0.35)  # an AR(1) of phi 0.9
    assert normal_memory(errors).score is None


async def test_a_recorded_score_memory_is_read_and_a_bad_one_is_unknown(rooms: Rooms) -> None:
    model = rooms.models.get("flat")

    def with_memory(memory: dict[str, object]) -> LoadedModel:
        manifest = model.manifest.model_copy(update={"metrics": {"normal_memory": memory}})
        return replace(model, artifact=replace(model.artifact, manifest=manifest))

    sensors = [2.0, 3.0, 4.0, 5.0]
    recorded = model_memory(with_memory({"reading": 7.0, "sensors": sensors, "score": 30.0}))
    from_reference = model_memory(model)  # what the manifest does not record
    assert from_reference is not None
    assert recorded == NormalMemory(7.0, (2.0, 3.0, 4.0, 5.0), 30.0, from_reference.exceedance)
    for bad in (None, 0.5, float("nan"), "30", True):
        memory = model_memory(with_memory({"reading": 7.0, "sensors": sensors, "score": bad}))
        assert memory == NormalMemory(7.0, (2.0, 3.0, 4.0, 5.0), None, from_reference.exceedance)
        unknown = {"reading": 7.0, "sensors": sensors, "exceedance": bad}
        assert model_memory(with_memory(unknown)) == NormalMemory(
            7.0, (2.0, 3.0, 4.0, 5.0), None, from_reference.exceedance
        )


def test_a_smoothed_models_score_memory_missing_from_the_manifest_comes_from_its_reference(
    tmp_path: Path,
) -> None:
    """Recorded before the smoothed scores' memory was: that one is measured on the
    reference when it is the whole calibration run; the recorded ones are kept."""
    ewma = {"method": "ewma", "window": 1, "alpha": 0.3}
    folder = build_test_artifact(tmp_path, name="smooth", smoothing=ewma)
    model = LoadedModel.from_artifact(load_artifact(folder))
    sensors = [2.0, 3.0, 4.0, 5.0]
    manifest = model.manifest.model_copy(
        update={"metrics": {"normal_memory": {"reading": 7.0, "sensors": sensors}}}
    )
    older = replace(model, artifact=replace(model.artifact, manifest=manifest))
    memory = model_memory(older)
    assert memory is not None and (memory.reading, memory.sensors) == (7.0, tuple(sensors))
    assert memory.score == model_memory(model).score  # type: ignore[union-attr]
    assert memory.score is not None and memory.score > 2.0  # an EWMA of 0.3 remembers
    # The exceedances' too, of the smoothed scores, which the threshold applies to.
    smoothed = make_smoother(ScoreSmoothing(**ewma)).update_many(
        reading_errors(model.artifact.reference_errors)
    )
    threshold = model.manifest.threshold.value
    assert memory.exceedance == exceedance_memory(smoothed, threshold)
