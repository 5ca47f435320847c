"""What the benchmarks share: the detectors compared on the same readings."""

from __future__ import annotations

import numpy as np
import torch

from models.benchmarks.common import DETECTORS, DetectorSet
from models.synthetic import generate_plant
from models.train import TrainConfig, train


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
