"""Sensors modelled as first differences on a short run (models/stationarity.py): the KPSS
rule that picks them, the scoring module that reads them, and the artifact that carries it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.__main__ import main
from models.export import export_artifact, export_program, script_module
from models.out_of_time import calibrate_out_of_time
from models.scores import detector_scores
from models.stationarity import (
    CRITICAL_5,
    kpss_statistic,
    non_stationary,
    short_run,
    with_differencing,
)
from models.train import TrainConfig, first_differences, train
from service.scoring.artifact import load_artifact
from tests.models.test_linear import ar_process

SENSORS = [f"s{i}" for i in range(4)]
DPCA = TrainConfig(family="dpca", window=2)


def wandering(n: int, seed: int) -> np.ndarray:
    """A stationary process whose first sensor also wanders as a random walk (a level that
    is not stationary: a temperature warming and cooling through a run)."""
    x = ar_process(n, 4, seed=seed)
    x[:, 0] += np.cumsum(np.random.default_rng(seed + 100).normal(scale=0.3, size=n))
    return x


def test_kpss_accepts_stationary_sensors_and_rejects_a_random_walk() -> None:
    x = wandering(400, seed=1)
    assert kpss_statistic(x[:, 0]) > CRITICAL_5
    assert all(kpss_statistic(x[:, j]) < CRITICAL_5 for j in (1, 2, 3))
    assert non_stationary(x, SENSORS) == ("s0",)
    assert kpss_statistic(np.full(50, 3.0)) == 0.0  # constant: nothing to difference


def test_the_rule_applies_only_to_a_short_run_without_calibration_data() -> None:
    x = wandering(400, seed=2)
    assert short_run(400, DPCA, separate_calibration=False)
    chosen = with_differencing(DPCA, x, SENSORS, separate_calibration=False)
    assert chosen.difference == ("s0",)
    assert with_differencing(DPCA, x, SENSORS, separate_calibration=True) == DPCA
    long_run = wandering(8000, seed=2)  # a 1200-reading tail is enough for 0.99
    assert not short_run(len(long_run), DPCA, separate_calibration=False)
    assert with_differencing(DPCA, long_run, SENSORS, separate_calibration=False) == DPCA


def test_a_differenced_sensor_is_read_as_changes_not_levels() -> None:
    x = wandering(400, seed=3)
    result = train(x, SENSORS, TrainConfig(family="dpca", window=2, difference=("s0",)))
    assert result.window == 3  # one reading more than the model's positions
    windows = torch.tensor(np.lib.stride_tricks.sliding_window_view(x[300:340], 3, axis=0))
    windows = windows.transpose(1, 2).float().contiguous()
    base = result.module(windows)
    for sensor, moves in ((0, False), (1, True)):
        shifted = windows.clone()
        shifted[:, :, sensor] += 5 * float(result.scaler_scale[sensor])
        changed = not torch.allclose(result.module(shifted), base, atol=1e-4)
        assert changed is moves, SENSORS[sensor]
    # The latest reading's reconstruction is in raw units: the reading before it plus the
    # reconstructed change, so near the reading itself.
    _, latest = result.module.score(windows)
    assert np.abs(latest[:, 0].numpy() - windows[:, -1, 0].numpy()).max() < 3 * float(
        result.scaler_scale[0]
    )


def test_first_differences_leave_levels_alone_without_a_differenced_sensor() -> None:
    x = np.arange(12.0).reshape(6, 2)
    assert first_differences(x, np.array([False, False])) is x
    assert first_differences(x, np.array([True, False]))[:, 0].tolist() == [2.0] * 5


def test_differencing_a_wandering_sensor_cuts_false_alarms_on_the_rest_of_a_normal_run() -> None:
    rates = {}
    for difference in ((), ("s0",)):
        rate = []
        for seed in range(4):
            x = wandering(1145, seed=10 + seed)
            config = TrainConfig(family="dpca", window=2, difference=difference)
            result = calibrate_out_of_time(train(x[:400], SENSORS, config), x[:400])
            scores = detector_scores(result, x[400 - result.window + 1 :])
            rate.append(float(np.mean(scores > result.threshold.value)))
        rates[difference] = float(np.mean(rate))
    assert rates[("s0",)] < 0.5 * rates[()]


def test_a_differenced_model_exports_and_the_service_loads_it(tmp_path: Path) -> None:
    x = wandering(400, seed=4)
    config = TrainConfig(family="autoencoder", window=1, difference=("s0",), epochs=5)
    result = train(x, SENSORS, config)
    windows = torch.tensor(np.lib.stride_tricks.sliding_window_view(x[:20], 2, axis=0))
    windows = windows.transpose(1, 2).float().contiguous()
    eager = result.module.score(windows)
    scripted = script_module(result.module).score(windows)
    exported = export_program(result.module).module()(windows)
    for other in (scripted, exported):
        assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(eager, other, strict=True))
    manifest = export_artifact(
        result, tmp_path / "m" / "1", name="m", version="1", training_data_sha256="0" * 64
    )
    artifact = load_artifact(tmp_path / "m" / "1")
    assert manifest.window == artifact.manifest.window == 2
    assert artifact.manifest.training["difference"] == ["s0"]


def test_a_sensor_the_data_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="difference names sensors"):
        train(wandering(400, seed=5), SENSORS, TrainConfig(family="dpca", difference=("x",)))


@pytest.mark.slow
def test_train_differences_a_short_run_when_told_and_not_by_default(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    np.save(tmp_path / "train.npy", wandering(400, seed=6))
    base = ["train", "--data", str(tmp_path / "train.npy"), "--out", str(tmp_path / "m")]
    base += ["--name", "model", "--family", "dpca", "--window", "2"]
    assert main([*base, "--version", "1", "--difference", "auto"]) == 0
    assert "modelling as first differences" in capsys.readouterr().err
    assert load_artifact(tmp_path / "m" / "model" / "1").manifest.window == 3
    assert main([*base, "--version", "2"]) == 0
    assert "modelling as first differences" not in capsys.readouterr().err
    manifest = load_artifact(tmp_path / "m" / "model" / "2").manifest
    assert manifest.window == 2
    assert manifest.training["difference"] == []
