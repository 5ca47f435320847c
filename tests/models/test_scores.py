"""The one scoring function of the evaluation code: a freshly trained model and its exported
artifact score the same readings alike, from the first full window on."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.export import export_artifact
from models.scores import detector_scores, per_sensor_errors, scores_from_errors
from models.synthetic import generate_plant
from models.train import train
from models.train_config import TrainConfig
from service.scoring.artifact import load_artifact, sha256_array


def test_trained_model_and_artifact_score_alike(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    data = generate_plant(1500, seed=5, n_sensors=6)
    result = train(data.values, data.sensors, TrainConfig(window=3, epochs=3, patience=2))
    export_artifact(
        result, tmp_path, name="tiny", version="1",
        training_data_sha256=sha256_array(data.values), include_export=False,
    )  # fmt: skip
    artifact = load_artifact(tmp_path)
    values = generate_plant(200, seed=6, n_sensors=6).values
    errors = per_sensor_errors(result, values)
    assert errors.shape == (198, 6)  # the first window - 1 readings have no score
    np.testing.assert_allclose(per_sensor_errors(artifact, values), errors, rtol=1e-5, atol=1e-7)
    scores = detector_scores(result, values)
    np.testing.assert_allclose(scores, errors.mean(axis=1))
    np.testing.assert_allclose(scores_from_errors(artifact, errors), scores)
    # The threshold was set on the same statistic: calibration errors' mean per reading.
    calibration = result.calibration_errors.astype(np.float64)
    np.testing.assert_allclose(
        np.quantile(scores_from_errors(result, calibration), result.threshold.quantile,
                    method="higher"),
        result.threshold.value, rtol=1e-6,
    )  # fmt: skip


def test_a_guarded_model_and_its_artifact_score_alike(tmp_path: Path) -> None:
    """The glitch guard's limits travel in the manifest: the artifact despikes as the trained
    model did, and the threshold is the quantile of what it flags."""
    torch.set_num_threads(1)
    data = generate_plant(1500, seed=5, n_sensors=6)
    config = TrainConfig(family="dpca", window=4, smoothing="ewma:0.3", glitch_guard=True)
    result = train(data.values, data.sensors, config)
    assert result.glitch_limits is not None
    manifest = export_artifact(
        result, tmp_path, name="tiny", version="1",
        training_data_sha256=sha256_array(data.values), include_export=False,
    )  # fmt: skip
    assert manifest.glitch_limits == pytest.approx(result.glitch_limits.tolist())
    artifact = load_artifact(tmp_path)
    values = generate_plant(300, seed=6, n_sensors=6).values
    values[[50, 120, 121, 200], [0, 2, 2, 5]] += 40 * result.scaler_scale[[0, 2, 2, 5]]
    errors = per_sensor_errors(result, values)
    plain = replace(result, glitch_limits=None)
    assert not np.allclose(per_sensor_errors(plain, values), errors)  # the guard did something
    np.testing.assert_allclose(per_sensor_errors(artifact, values), errors, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        scores_from_errors(artifact, errors), scores_from_errors(result, errors), rtol=1e-9
    )
    calibration = scores_from_errors(result, result.calibration_errors)
    quantile = np.quantile(calibration, config.quantile, method="higher")
    assert result.threshold.value == pytest.approx(quantile, rel=1e-6)
