"""The PCA baseline: fitted on normal training readings, limits from calibration readings."""

from __future__ import annotations

import numpy as np
import pytest

from models.baselines import PCABaseline
from models.metrics import roc_auc
from models.synthetic import generate_plant, inject_anomalies


def _correlated(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    latent = rng.normal(size=(n, 2))
    mixing = np.array([[1.0, 0.5, -1.0, 2.0, 0.0], [0.0, 1.0, 1.0, -0.5, 1.0]])
    return 10.0 + latent @ mixing + 0.05 * rng.normal(size=(n, 5))


def test_keeps_the_components_that_explain_the_variance() -> None:
    pca = PCABaseline.fit(_correlated(2000, 0), variance_to_keep=0.9)
    assert pca.n_components == 2
    assert pca.explained_variance > 0.9
    np.testing.assert_allclose(pca.components.T @ pca.components, np.eye(2), atol=1e-10)


def test_spe_sees_a_broken_correlation_that_t2_misses() -> None:
    pca = PCABaseline.fit(_correlated(2000, 0), variance_to_keep=0.9)
    pca = pca.calibrate(_correlated(1000, 1), quantile=0.99)
    broken = _correlated(200, 2)
    broken[:, 0] = 10.0 + (broken[:, 0] - 10.0) * -1.0  # sensor 0 now moves against the others
    assert np.mean(pca.spe(broken) > pca.spe_limit) > 0.8
    fresh = _correlated(5000, 3)
    assert np.mean(pca.spe(fresh) > pca.spe_limit) == pytest.approx(0.01, abs=0.01)
    assert np.mean(pca.t2(fresh) > pca.t2_limit) == pytest.approx(0.01, abs=0.01)


def test_spe_contributions_blame_the_broken_sensor() -> None:
    pca = PCABaseline.fit(_correlated(2000, 0))
    reading = _correlated(1, 4)
    reading[0, 3] += 5.0
    contributions = pca.spe_contributions(reading)
    assert int(np.argmax(contributions[0])) == 3
    np.testing.assert_allclose(contributions.sum(axis=1), pca.spe(reading))


def test_constant_sensor_does_not_divide_by_zero() -> None:
    x = _correlated(500, 0)
    x[:, 2] = 7.0
    pca = PCABaseline.fit(x)
    assert np.isfinite(pca.t2(x)).all() and np.isfinite(pca.spe(x)).all()
    assert pca.scale[2] == 1.0


def test_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="n_readings"):
        PCABaseline.fit(np.ones((1, 3)))
    with pytest.raises(ValueError, match="no variance"):
        PCABaseline.fit(np.ones((10, 3)))
    pca = PCABaseline.fit(_correlated(100, 0))
    with pytest.raises(ValueError, match="expected"):
        pca.spe(np.ones((3, 4)))
    with pytest.raises(ValueError, match="quantile"):
        pca.calibrate(_correlated(10, 1), quantile=1.0)


def test_detects_a_large_shift_on_the_synthetic_plant() -> None:
    train = generate_plant(3000, seed=11, n_sensors=20).values
    calibration = generate_plant(1500, seed=12, n_sensors=20).values
    test = generate_plant(3000, seed=13, n_sensors=20).values
    injected = inject_anomalies(test, seed=14, kinds=("step",))
    assert injected.labels.any()
    pca = PCABaseline.fit(train).calibrate(calibration, quantile=0.99)
    spe = pca.spe(injected.values)
    assert roc_auc(spe, injected.labels) > 0.9
    assert np.mean(spe[injected.labels] > pca.spe_limit) > 0.5
    assert np.mean(spe[~injected.labels] > pca.spe_limit) < 0.05
