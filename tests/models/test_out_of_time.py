"""The out-of-time threshold for short training runs (models/out_of_time.py) and how
selection ranks at it (models/selection.py)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from models.__main__ import main
from models.inject import Fault
from models.injected import InjectedRun, detection, injected_run, outcomes, selection_threshold
from models.operating_point import declared, parse_smoothing, smooth
from models.out_of_time import (
    calibrate_out_of_time,
    decide,
    kept_scores,
    out_of_time_errors,
    out_of_time_scores,
)
from models.scores import detector_scores
from models.selection import copies_input, select
from models.threshold import estimate_threshold
from models.train import TrainResult, train
from models.train_config import TrainConfig
from service.calibration.evidence import autocorrelation_time, exceedance_memory
from service.scoring.artifact import load_artifact
from tests.models.test_linear import ar_process

SENSORS = [f"s{i}" for i in range(4)]
DPCA = TrainConfig(family="dpca", window=1)


def drifting(n: int, seed: int) -> np.ndarray:
    """A normal process whose first sensor drifts slowly and steadily, as a temperature
    warming through a run does: the drift over a short run's tail is small, over the rest of
    the run it is not."""
    x = ar_process(n, 4, seed=seed)
    x[:, 0] += np.linspace(0.0, 0.001 * n, n)
    return x


def false_alarms(threshold: float, result: TrainResult, values: np.ndarray) -> float:
    return float(np.mean(detector_scores(result, values) > threshold))


def test_the_rule_applies_only_to_a_short_tail_of_the_training_file() -> None:
    normal = ar_process(2400, 4, seed=1)
    short = train(normal[:400], SENSORS, DPCA)
    assert decide(short).applies
    separate = train(normal[:400], SENSORS, DPCA, calibration_values=normal[400:500])
    assert not decide(separate).applies
    long_enough = train(normal, SENSORS, TrainConfig(family="dpca", window=1, quantile=0.9))
    assert not decide(long_enough).applies  # 360 tail readings, 100 needed at 0.9
    unchanged = calibrate_out_of_time(separate, normal[:400])
    assert unchanged.threshold == separate.threshold
    assert unchanged.metrics["out_of_time"]["applied"] is False


def test_each_half_is_scored_by_a_model_that_never_saw_it() -> None:
    normal = ar_process(400, 4, seed=2)
    result = train(normal, SENSORS, TrainConfig(family="dpca", window=3))
    first, second = out_of_time_errors(result, normal)
    # A window of 3 leaves the first two readings of each half without a score.
    assert first.shape == (198, 4) and second.shape == (198, 4)
    in_sample = train(normal[:200], SENSORS, TrainConfig(family="dpca", window=3))
    assert float(first.mean()) > float(in_sample.metrics["train_error_mean"])


def test_on_a_drifting_run_the_threshold_holds_better_on_the_rest_of_it() -> None:
    run = drifting(800, seed=3)
    result = train(run[:400], SENSORS, DPCA)
    calibrated = calibrate_out_of_time(result, run[:400])
    note = calibrated.metrics["out_of_time"]
    assert note["applied"] is True and note["n_calibration"] == 400
    assert calibrated.threshold.value > result.threshold.value
    assert "out-of-time" in calibrated.threshold.source
    rest = run[400:]
    tail_rate = false_alarms(result.threshold.value, result, rest)
    out_of_time_rate = false_alarms(calibrated.threshold.value, calibrated, rest)
    assert out_of_time_rate < tail_rate / 2


def test_on_a_stationary_run_it_stays_near_the_quantile() -> None:
    run = ar_process(4400, 4, seed=4)
    result = calibrate_out_of_time(train(run[:400], SENSORS, DPCA), run[:400])
    assert result.metrics["out_of_time"]["applied"] is True
    assert false_alarms(result.threshold.value, result, run[400:]) <= 0.05


def test_the_smoothing_a_model_declares_is_applied_to_each_half() -> None:
    run = drifting(800, seed=5)
    raw = calibrate_out_of_time(train(run[:400], SENSORS, DPCA), run[:400])
    smoothed_model = train(
        run[:400], SENSORS, TrainConfig(family="dpca", window=1, smoothing="mean:5")
    )
    smoothed = calibrate_out_of_time(smoothed_model, run[:400])
    assert smoothed.threshold.value < raw.threshold.value  # a mean of 5 pulls the tail in


def test_each_half_starts_where_the_declared_smoothing_will() -> None:
    """Each half is smoothed as a new stream is, from the level of the errors the threshold is
    set on (the model's calibration errors from then on): a half that opens high does not
    carry its first score, unsmoothed, into the tail."""
    run = drifting(800, seed=5)[:400].copy()
    run[0] += 6.0
    run[200] += 6.0  # the second half's first reading
    model = train(run, SENSORS, TrainConfig(family="dpca", window=1, smoothing="mean:5"))
    calibrated = calibrate_out_of_time(model, run)
    halves = [kept_scores(part) for part in out_of_time_errors(model, run)]
    level = float(np.mean(np.concatenate(halves).astype(np.float64)))
    assert calibrated.smoothing.start == level != model.smoothing.start
    seeded = np.concatenate([smooth(half, calibrated.smoothing) for half in halves])
    from_first = np.concatenate([smooth(half, parse_smoothing("mean:5")) for half in halves])
    assert calibrated.threshold.value == estimate_threshold(seeded, 0.99, source="x").value
    assert calibrated.threshold.value < estimate_threshold(from_first, 0.99, source="x").value
    # What recalibration counts labelled stretches by is measured on these scores too, at
    # this threshold, not on the tail's.
    memory = calibrated.metrics["normal_memory"]
    assert memory["score"] == autocorrelation_time(seeded)
    assert memory["exceedance"] == exceedance_memory(seeded, calibrated.threshold.value)
    assert memory != model.metrics["normal_memory"]


@pytest.mark.parametrize("spec", ["ewma:0.1", "ewma:0.5", "mean:3", "median:5", "none"])
def test_selection_weighs_a_short_run_at_the_threshold_and_start_it_ships_with(spec: str) -> None:
    run = drifting(800, seed=7)[:400].copy()
    run[0] += 6.0
    run[200] += 6.0  # each half opens high: where a smoothing starts shows in its tail
    model = train(run, SENSORS, TrainConfig(family="dpca", window=1))
    references = out_of_time_scores(model, run)
    assert references is not None
    injected = replace(injected_run(model, run), reference=references)
    shipped = calibrate_out_of_time(model.with_smoothing(spec), run)
    assert selection_threshold(injected, spec, 0.99) == shipped.threshold.value
    assert declared(spec, np.concatenate(references)) == shipped.smoothing


def test_selection_starts_each_faulty_run_where_the_shipped_smoothing_starts() -> None:
    """A fault from a run's first reading is caught as soon as the shipped smoothing would
    catch it: from where its threshold's scores sit (here the out-of-time reference, far
    above the clean run), not from the fault's first score nor from the clean run's level."""
    clean = 1.0 + 0.01 * (np.arange(200) % 10)
    fault = Fault("bias", sensor=0, onset=0, size=1.0)
    faulty = np.concatenate([[0.0], np.full(199, 12.0)])
    run = InjectedRun(clean, [(fault, faulty)], window=1, reference=[clean + 10.0, clean + 10.0])
    delay = outcomes(run, "ewma:0.1", 0.99).delays[0]
    assert 0 < delay < 15  # from 0 (the first score) or from 1.05 (the clean run): 24 or more


def test_selection_ranks_at_the_threshold_a_short_run_ships_with() -> None:
    clean = np.full(200, 1.0) + 0.01 * np.arange(200) % 0.1
    faulty = np.concatenate([clean[:100], np.full(100, 3.0)])
    fault = Fault("bias", sensor=0, onset=100, size=1.5)
    run = InjectedRun(clean, [(fault, faulty)], window=1)
    assert detection(run, "none", 0.99)["bias"] == 1.0
    # The same faults at a threshold the out-of-time errors set higher than the fault.
    far = InjectedRun(clean, [(fault, faulty)], window=1, reference=[clean, clean + 3.0])
    assert detection(far, "none", 0.99)["bias"] == 0.0


@pytest.mark.parametrize(
    ("family", "window", "n_sensors", "copies"),
    [
        ("autoencoder", 1, 1, True),
        ("autoencoder", 2, 1, True),
        ("autoencoder", 6, 1, False),
        ("conv", 6, 1, True),
        ("conv", 6, 8, False),
        ("cva", 2, 1, False),
    ],
)
def test_a_bottleneck_as_wide_as_its_input_is_no_candidate(
    family: str, window: int, n_sensors: int, copies: bool
) -> None:
    assert copies_input(TrainConfig(family=family, window=window), n_sensors) is copies


@pytest.mark.slow
def test_selection_on_one_sensor_tries_no_copying_autoencoder() -> None:
    series = ar_process(500, 1, seed=6)
    chosen = select(series, ["value"], TrainConfig(epochs=5), calibration_values=None)
    tried = {(s.config.family, s.config.window) for s in chosen.ranking}
    assert ("autoencoder", 1) not in tried
    assert not any(family == "conv" for family, _ in tried)
    assert any(family == "cva" for family, _ in tried)


@pytest.mark.slow
def test_train_on_a_short_run_writes_the_out_of_time_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "train.npy", drifting(400, seed=7))
    args = ["train", "--data", str(tmp_path / "train.npy"), "--out", str(tmp_path / "m")]
    args += ["--name", "model", "--version", "1", "--family", "dpca", "--window", "2"]
    assert main(args) == 0
    capsys.readouterr()
    manifest = load_artifact(tmp_path / "m" / "model" / "1").manifest
    assert manifest.metrics["out_of_time"]["applied"] is True
    assert manifest.threshold.n_calibration == 398  # both halves, less a window's context
    assert "out-of-time" in manifest.threshold.source
