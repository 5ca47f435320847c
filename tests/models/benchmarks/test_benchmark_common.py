"""What the benchmarks share: the detectors compared on the same readings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.benchmarks.common import DETECTORS, DetectorSet, train_as_default
from models.synthetic import generate_plant
from models.train import train
from models.train_config import TrainConfig


def test_detector_set_aligns_pca_with_windowed_autoencoder() -> None:
    """With a window of w readings the first w-1 have no autoencoder score: every detector
    drops them, so all scores describe the same readings; limits are calibration quantiles."""
    torch.set_num_threads(1)
    values = generate_plant(1200, seed=3, n_sensors=6).values
    calibration = generate_plant(600, seed=4, n_sensors=6).values
    sensors = [f"s{i}" for i in range(6)]
    result = train(values, sensors, TrainConfig(window=3, epochs=3, patience=2))
    detectors = DetectorSet.build(
        result, values, calibration, quantile=0.9, calibration_source="test"
    )
    scores = detectors.scores(values[:100])
    assert {name: s.shape for name, s in scores.items()} == dict.fromkeys(DETECTORS, (98,))
    np.testing.assert_allclose(scores["pca_spe"], detectors.pca.spe(values[2:100]))
    calibration_scores = detectors.scores(calibration)
    for name in DETECTORS:
        assert np.mean(calibration_scores[name] > detectors.limits[name]) <= 0.1
        assert detectors.limits[name] in calibration_scores[name]  # an order statistic


def test_a_short_run_keeps_the_threshold_train_gave_it() -> None:
    """A short run without calibration data: the benchmark judges the model at the
    out-of-time threshold ``train`` sets, not at the quantile of its tail."""
    values = generate_plant(400, seed=5, n_sensors=6).values
    sensors = [f"s{i}" for i in range(6)]
    config = TrainConfig(family="dpca", window=2)
    result = train_as_default(values, sensors, config, select_model=False)
    assert result.metrics["out_of_time"]["applied"] is True
    start, stop = result.splits["calibration"]
    tail = values[start:stop]
    kept = DetectorSet.build(
        result, values, tail, quantile=0.99, calibration_source="test", own_threshold=True
    )
    assert kept.limits["autoencoder"] == result.threshold.value
    requantiled = DetectorSet.build(result, values, tail, quantile=0.99, calibration_source="test")
    tail_threshold = result.metrics["out_of_time"]["tail_threshold"]
    # train keeps the errors in float32, the benchmark scores in float64
    assert requantiled.limits["autoencoder"] == pytest.approx(tail_threshold, rel=1e-6)
    assert kept.limits["autoencoder"] != pytest.approx(tail_threshold, rel=1e-3)
    assert kept.limits["pca_t2"] == requantiled.limits["pca_t2"]
