"""Training: time splits without leakage, zero-variance sensors, determinism, thresholds."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from models.fitting import EpochRecord
from models.inputs import rewritten_readings
from models.network import SensorAutoencoder
from models.synthetic import generate_plant
from models.train import TrainResult, time_splits, train
from models.train_config import TrainConfig
from models.windows import score_readings

N_SENSORS = 6
TINY = TrainConfig(epochs=4, patience=2, batch_size=32, seed=7)


@pytest.fixture(scope="module")
def plant() -> np.ndarray:
    torch.set_num_threads(1)
    return generate_plant(800, seed=11, n_sensors=N_SENSORS).values


@pytest.fixture(scope="module")
def sensors() -> list[str]:
    return [f"s{i}" for i in range(N_SENSORS)]


@pytest.fixture(scope="module")
def baseline(plant: np.ndarray, sensors: list[str]) -> TrainResult:
    return train(plant, sensors, TINY)


def weights(result: TrainResult) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in result.module.state_dict().items()}


def assert_same_weights(a: TrainResult, b: TrainResult) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def test_splits_are_contiguous_and_in_time_order() -> None:
    splits = time_splits(1000, TrainConfig(), separate_calibration=False)
    assert splits == {"train": (0, 700), "validation": (700, 850), "calibration": (850, 1000)}
    separate = time_splits(1000, TrainConfig(), separate_calibration=True)
    assert separate == {"train": (0, 850), "validation": (850, 1000)}
    with pytest.raises(ValueError, match="fewer than one window"):
        time_splits(20, TrainConfig(window=5), separate_calibration=False)


def test_scaler_is_the_training_split_only(
    baseline: TrainResult, plant: np.ndarray, sensors: list[str]
) -> None:
    start, stop = baseline.splits["train"]
    np.testing.assert_allclose(baseline.scaler_mean, plant[start:stop].mean(axis=0))
    np.testing.assert_allclose(baseline.scaler_scale, plant[start:stop].std(axis=0))
    assert not np.allclose(baseline.scaler_mean, plant.mean(axis=0))
    np.testing.assert_allclose(baseline.module.mean.numpy(), baseline.scaler_mean, rtol=1e-6)


def test_calibration_rows_set_only_the_threshold(
    baseline: TrainResult, plant: np.ndarray, sensors: list[str]
) -> None:
    """Wildly different calibration rows leave scaler and weights untouched; the threshold
    moves, and equals the quantile of exactly those rows' errors."""
    start, stop = baseline.splits["calibration"]
    perturbed = plant.copy()
    perturbed[start:stop] = perturbed[start:stop] * 3.0 + 100.0
    other = train(perturbed, sensors, TINY)
    np.testing.assert_array_equal(other.scaler_mean, baseline.scaler_mean)
    np.testing.assert_array_equal(other.scaler_scale, baseline.scaler_scale)
    assert_same_weights(other, baseline)
    assert other.threshold.value > 10 * baseline.threshold.value
    errors = score_readings(other.module, perturbed[start:stop], 1).mean(axis=1)
    assert other.threshold.value == pytest.approx(
        float(np.quantile(errors, TINY.quantile, method="higher")), rel=1e-6
    )
    assert other.threshold.n_calibration == stop - start


def test_validation_rows_never_reach_scaler_or_threshold(
    baseline: TrainResult, plant: np.ndarray, sensors: list[str]
) -> None:
    start, stop = baseline.splits["validation"]
    perturbed = plant.copy()
    perturbed[start:stop] += 50.0
    other = train(perturbed, sensors, TINY)
    np.testing.assert_array_equal(other.scaler_mean, baseline.scaler_mean)
    np.testing.assert_array_equal(other.scaler_scale, baseline.scaler_scale)


def test_separate_calibration_data_sets_the_threshold(
    plant: np.ndarray, sensors: list[str]
) -> None:
    calibration = generate_plant(300, seed=12, n_sensors=N_SENSORS).values
    result = train(
        plant, sensors, TINY, calibration_values=calibration, calibration_source="run 12"
    )
    assert "calibration" not in result.splits
    assert result.splits["validation"][1] == len(plant)
    assert result.threshold.n_calibration == 300
    assert result.threshold.source == "run 12"
    assert result.calibration_errors.shape == (300, N_SENSORS)
    shifted = train(plant, sensors, TINY, calibration_values=calibration + 5 * plant.std(axis=0))
    assert_same_weights(shifted, result)
    assert shifted.threshold.value > result.threshold.value


def test_same_seed_same_model(baseline: TrainResult, plant: np.ndarray, sensors: list[str]) -> None:
    again = train(plant, sensors, TINY)
    assert_same_weights(again, baseline)
    assert again.threshold == baseline.threshold
    assert [r.val_loss for r in again.history] == [r.val_loss for r in baseline.history]
    reseeded = train(plant, sensors, replace(TINY, seed=8))
    assert not torch.equal(
        weights(reseeded)["autoencoder.encoder.0.weight"],
        weights(baseline)["autoencoder.encoder.0.weight"],
    )


def test_constant_sensor_gets_unit_scale_and_is_reported(
    plant: np.ndarray, sensors: list[str]
) -> None:
    values = plant.copy()
    values[:, 2] = 1234.5
    result = train(values, sensors, TINY)
    assert result.constant_sensors == ["s2"]
    assert result.scaler_scale[2] == 1.0
    assert result.metrics["constant_sensors"] == ["s2"]
    errors = score_readings(result.module, values, 1)
    assert np.isfinite(errors).all()
    # A constant sensor that moves is noticed: a unit change is a squared error of ~1.
    moved = values.copy()
    moved[:, 2] += 3.0
    assert score_readings(result.module, moved, 1)[:, 2].mean() > 4.0


def test_early_stopping_restores_the_best_epoch(plant: np.ndarray, sensors: list[str]) -> None:
    seen: list[EpochRecord] = []
    config = TrainConfig(epochs=200, patience=3, lr=0.05, seed=1)
    result = train(plant, sensors, config, progress=lambda record, budget: seen.append(record))
    assert seen == result.history
    assert len(result.history) < 200
    best = min(result.history, key=lambda r: r.val_loss)
    assert result.best_epoch == best.epoch
    assert len(result.history) - result.best_epoch == config.patience
    assert result.metrics["val_loss"] == best.val_loss


def test_window_model_scores_one_row_per_window(plant: np.ndarray, sensors: list[str]) -> None:
    result = train(plant, sensors, replace(TINY, window=4))
    assert result.module.window == 4
    assert result.module.autoencoder.n_inputs == 4 * N_SENSORS
    start, stop = result.splits["calibration"]
    assert result.calibration_errors.shape == (stop - start - 3, N_SENSORS)
    assert score_readings(result.module, plant[:10], 4).shape == (7, N_SENSORS)
    assert result.glitch_limits is None  # the glitch guard is off by default
    # With it, limits for a window and none for one reading.
    guarded = train(plant, sensors, replace(TINY, window=4, glitch_guard=True))
    assert guarded.glitch_limits is not None and len(guarded.glitch_limits) == N_SENSORS
    assert train(plant, sensors, replace(TINY, glitch_guard=True)).glitch_limits is None


def test_denoising_variants_train(plant: np.ndarray, sensors: list[str]) -> None:
    for config in (replace(TINY, noise_std=0.0), replace(TINY, noise_std=0.0, mask_prob=0.3)):
        result = train(plant, sensors, config)
        assert math.isfinite(result.threshold.value) and result.threshold.value > 0


def test_default_autoencoder_is_underpowered() -> None:
    model = SensorAutoencoder(50)
    assert (model.hidden, model.latent) == ((32,), 8)
    assert model.latent < model.n_inputs / 4


def test_a_bottleneck_as_wide_as_the_input_is_warned_about() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(300, 1))
    config = TrainConfig(epochs=2, patience=1)
    result = train(values, ["only"], config, calibration_values=rng.normal(size=(200, 1)))
    assert result.config.latent == 2
    assert any(
        "bottleneck (2) is not narrower than the input (1" in w for w in result.metrics["warnings"]
    )
    wide = train(rng.normal(size=(300, 12)), [f"s{i}" for i in range(12)], config)
    assert not any("bottleneck" in w for w in wide.metrics["warnings"])


def test_train_warns_when_the_guard_rewrites_a_normal_run() -> None:
    """A run whose normal jumps exceed the short training run's: the guard rewrites the
    calibration run, which holds no glitches, and train says so with the count."""
    rng = np.random.default_rng(3)
    values = np.cumsum(rng.normal(size=(1400, 3)), axis=0) * 0.1 + rng.normal(size=(1400, 3))
    calibration = values[1000:].copy()
    calibration[::40, 0] += 6.0  # normal for this run, beyond anything in training
    config = TrainConfig(family="dpca", window=3, glitch_guard=True)
    result = train(values[:1000], ["a", "b", "c"], config, calibration_values=calibration)
    assert rewritten_readings(calibration, result.glitch_limits) >= 5
    assert result.metrics["glitch_guard"]["calibration_readings_rewritten"] >= 5
    warning = next(w for w in result.metrics["warnings"] if w.startswith("glitch guard:"))
    assert "calibration readings (separate calibration data; " in warning
    assert "above the 0.1% a normal run should show" in warning
    quiet = train(values[:1000], ["a", "b", "c"], config, calibration_values=values[1000:])
    assert not any(w.startswith("glitch guard") for w in quiet.metrics["warnings"])
