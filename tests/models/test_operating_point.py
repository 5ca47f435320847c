"""The declared score smoothing and the threshold set on smoothed calibration scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.export import export_artifact
from models.injected import injected_run, selection_threshold
from models.operating_point import declared, parse_smoothing, smooth
from models.synthetic import generate_plant
from models.threshold import estimate_threshold
from models.train import train
from models.train_config import TrainConfig
from service.calibration.evidence import autocorrelation_time, exceedance_memory
from service.scoring.artifact import ArtifactError, load_artifact
from service.scoring.decision import reading_errors
from service.scoring.registry import LoadedModel
from service.scoring.sequence import score_sequence
from service.scoring.smoothing import make_smoother
from tests.models.test_linear import ar_process


@pytest.mark.parametrize("spec", ["median:3", "mean:4", "ewma:0.3"])
def test_smoothing_is_the_services_own(spec: str) -> None:
    scores = np.random.default_rng(0).gamma(2.0, size=200)
    how = parse_smoothing(spec)
    service = make_smoother(how)
    one_by_one = [service.update(x) for x in scores]
    np.testing.assert_allclose(smooth(scores, how), one_by_one)


@pytest.mark.parametrize("spec", ["ewma", "ewma:0", "ewma:2", "median:0", "median:x", "kalman:3"])
def test_a_smoothing_that_cannot_be_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="smoothing"):
        parse_smoothing(spec)
    with pytest.raises(ValueError, match="smoothing"):
        TrainConfig(smoothing=spec)


def test_the_threshold_is_the_quantile_of_smoothed_calibration_scores(tmp_path: Path) -> None:
    process = ar_process(1600, 4, seed=0)
    sensors = [f"s{i}" for i in range(4)]
    config = TrainConfig(family="dpca", window=2, smoothing="ewma:0.2")
    result = train(process[:1000], sensors, config, calibration_values=process[1000:])
    scores = reading_errors(result.calibration_errors)
    # Started where the calibration scores sit, as the service starts a new stream.
    start = float(scores.mean())
    how = parse_smoothing("ewma:0.2").model_copy(update={"start": start})
    assert result.smoothing == how
    smoothed = smooth(scores, how)
    assert result.threshold.value == estimate_threshold(smoothed, 0.99, source="x").value
    raw = result.with_smoothing("none")
    assert raw.threshold.value > result.threshold.value  # smoothing narrows the tail
    assert raw.config.smoothing == "none" and result.config.smoothing == "ewma:0.2"
    # The memory recalibration counts the scores by is that of the smoothing declared, also
    # when selection set it after training (it kept the first one's before).
    for model, scored in ((result, smoothed), (raw, scores)):
        memory = model.metrics["normal_memory"]
        assert memory["score"] == autocorrelation_time(scored)
        assert memory["exceedance"] == exceedance_memory(scored, model.threshold.value)
    assert (
        raw.with_smoothing("ewma:0.2").metrics["normal_memory"] == result.metrics["normal_memory"]
    )
    assert result.metrics["normal_memory"]["score"] > raw.metrics["normal_memory"]["score"]

    manifest = export_artifact(
        result, tmp_path / "m" / "1", name="m", version="1", training_data_sha256="0" * 64
    )
    assert manifest.smoothing == how
    assert load_artifact(tmp_path / "m" / "1").manifest.smoothing == manifest.smoothing

    # The smoothing is part of what the weights and threshold were made for: a manifest that
    # declares another is refused, as an edited threshold is.
    path = tmp_path / "m" / "1" / "manifest.json"
    edited = json.loads(path.read_text())
    assert edited["smoothing"]["start"] == start
    # A smoothing that starts nowhere is written as before it could: older services load it.
    export_artifact(raw, tmp_path / "m" / "2", name="m", version="2", training_data_sha256="0" * 64)
    written = json.loads((tmp_path / "m" / "2" / "manifest.json").read_text())
    assert written["smoothing"] == {"method": "none", "window": 1, "alpha": 1.0}
    original = edited["smoothing"]
    for other in ({"method": "none", "window": 1, "alpha": 1.0}, {**original, "start": 0.0}):
        edited["smoothing"] = other
        path.write_text(json.dumps(edited))
        with pytest.raises(ArtifactError, match="smoothing"):
            load_artifact(tmp_path / "m" / "1")


@pytest.mark.parametrize("spec", ["median:3", "median:5", "ewma:0.3", "none"])
def test_the_service_flags_the_calibration_run_as_often_as_train_counts(
    tmp_path: Path, spec: str
) -> None:
    """The false-alarm rate train states is the rate the service flags at, to the reading: a
    calibration reading at the threshold (for a median, up to its length of readings share
    that value) is not an ulp above it in the service."""
    training = generate_plant(3000, seed=0, n_sensors=8)
    calibration = generate_plant(3000, seed=1, n_sensors=8)
    config = TrainConfig(family="cva", window=4, smoothing=spec)
    result = train(training.values, training.sensors, config, calibration_values=calibration.values)
    folder = tmp_path / "m" / "1"
    export_artifact(result, folder, name="m", version="1", training_data_sha256="0" * 64)
    model = LoadedModel.from_artifact(load_artifact(folder))
    assert model.manifest.smoothing is not None
    served = score_sequence(
        model,
        calibration.values.astype(np.float32),
        model.manifest.threshold.value,
        3,
        model.manifest.smoothing,
    )
    np.testing.assert_array_equal(served.squared, result.calibration_errors)
    # What train counted beyond its threshold when it set it is what the service flags.
    assert 0 < served.decisions.anomalies.sum() == result.threshold.n_exceeding
    counted = smooth(reading_errors(result.calibration_errors), result.smoothing)
    np.testing.assert_array_equal(served.decisions.anomalies, counted > result.threshold.value)


def test_a_high_first_calibration_score_is_smoothed_as_any_other() -> None:
    """The threshold is set on calibration scores smoothed from the declared start, as the
    service smooths a new stream: a calibration run that opens high does not carry its first
    score, unsmoothed, into the tail."""
    process = ar_process(1600, 4, seed=0)
    calibration = process[1000:].copy()
    calibration[0] += 6.0
    sensors = [f"s{i}" for i in range(4)]
    config = TrainConfig(family="dpca", window=2, smoothing="ewma:0.2")
    result = train(process[:1000], sensors, config, calibration_values=calibration)
    scores = reading_errors(result.calibration_errors)
    seeded = estimate_threshold(smooth(scores, result.smoothing), 0.99, source="x").value
    from_first = estimate_threshold(smooth(scores, parse_smoothing("ewma:0.2")), 0.99, source="x")
    assert result.threshold.value == seeded
    assert from_first.value > 2 * seeded  # the first score's excursion would have set it
    assert result.with_smoothing("ewma:0.2").threshold.value == seeded
    # Selection ranks each smoothing at the threshold train then sets for it.
    run = injected_run(result, calibration)
    for spec in ("ewma:0.2", "mean:3", "median:3", "none"):
        assert selection_threshold(run, spec, 0.99) == result.with_smoothing(spec).threshold.value


@pytest.mark.parametrize(
    ("spec", "start"), [("ewma:0.3", 2.5), ("mean:3", 2.5), ("median:5", 1.5), ("none", None)]
)
def test_a_declared_smoothing_starts_at_the_calibration_level(
    spec: str, start: float | None
) -> None:
    how = declared(spec, np.array([1.0, 2.0, 7.0, 0.0]))
    assert how.label() == spec and how.start == start


def test_a_declared_smoothing_without_calibration_scores_is_refused() -> None:
    with pytest.raises(ValueError, match="calibration scores"):
        declared("ewma:0.3", np.array([]))
    assert declared("none", np.array([])).start is None
