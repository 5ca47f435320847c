"""DPCA and CVA (models/linear.py): the statistic, its per-sensor split, and the artifact
contract they share with the autoencoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.baselines import PCABaseline
from models.export import export_artifact
from models.linear import LowRankResidual, QuadraticResidual, fit_cva, fit_dpca, root_residual
from models.train import train
from models.train_config import TrainConfig
from models.windows import score_readings
from service.scoring.artifact import load_artifact


def ar_process(n: int, n_sensors: int, seed: int) -> np.ndarray:
    """Sensors driven by two slow latent AR(1) states: a process with memory and structure."""
    rng = np.random.default_rng(seed)
    states = np.zeros((n, 2))
    for t in range(1, n):
        states[t] = 0.9 * states[t - 1] + rng.normal(scale=0.5, size=2)
    mixing = rng.normal(size=(2, n_sensors))
    return 10.0 + states @ mixing + 0.2 * rng.normal(size=(n, n_sensors))


@pytest.fixture(scope="module")
def process() -> np.ndarray:
    return ar_process(1200, 5, seed=0)


@pytest.mark.parametrize("fit", [fit_dpca, fit_cva])
def test_the_statistic_splits_into_non_negative_sensor_shares_that_add_up(
    process: np.ndarray, fit: object
) -> None:
    z = (process - process.mean(0)) / process.std(0)
    result = fit(z, 3)  # type: ignore[operator]
    root = result.root
    np.testing.assert_allclose(root, root.T, atol=1e-10)
    flat = z[:3].reshape(1, -1)
    matrix = root @ root
    statistic = float((flat @ matrix @ flat.T)[0, 0])
    shares = (flat @ root) ** 2
    assert (shares >= 0).all()
    assert shares.sum() == pytest.approx(statistic, rel=1e-8)


def test_dpca_over_one_reading_without_t2_is_the_pca_residual(process: np.ndarray) -> None:
    """With window 1 and M the residual projector, z - Rz is PCA's reconstruction."""
    pca = PCABaseline.fit(process, variance_to_keep=0.9)
    z = (process - pca.mean) / pca.scale
    projector = np.eye(z.shape[1]) - pca.components @ pca.components.T
    reconstruction = QuadraticResidual(projector)(torch.tensor(z[:10], dtype=torch.float32))
    expected = z[:10] @ pca.components @ pca.components.T
    np.testing.assert_allclose(reconstruction.numpy(), expected, atol=1e-5)


def test_both_statistics_average_one_per_part_on_training_windows(process: np.ndarray) -> None:
    """T² and Q are each divided by their training mean, so neither swamps the other."""
    z = (process - process.mean(0)) / process.std(0)
    for result in (fit_dpca(z, 2), fit_cva(z, 2)):
        flat = np.lib.stride_tricks.sliding_window_view(z, 2, axis=0).transpose(0, 2, 1)
        flat = flat.reshape(len(flat), -1)
        statistic = ((flat @ result.root) ** 2).sum(axis=1)
        assert statistic.mean() == pytest.approx(2.0, rel=0.05)


def test_cva_separates_a_change_of_dynamics_that_a_static_model_misses() -> None:
    """The same readings in a shuffled order (same sensors, same spread, same correlations,
    no memory): CVA, which models how the past predicts the future, flags far more of them
    than one-reading DPCA (plain PCA), which sees each reading alone."""
    normal = ar_process(4000, 4, seed=1)
    shuffled = normal[3000:][np.random.default_rng(2).permutation(1000)]
    sensors = [f"s{i}" for i in range(4)]
    flagged = {}
    for family, window in (("cva", 3), ("dpca", 1)):
        result = train(
            normal[:2000],
            sensors,
            TrainConfig(family=family, window=window),
            calibration_values=normal[2000:3000],
        )
        scores = score_readings(result.module, shuffled, window).mean(axis=1)
        flagged[family] = float((scores > result.threshold.value).mean())
    assert flagged["dpca"] < 0.05
    assert flagged["cva"] > 5 * max(flagged["dpca"], 0.01)


@pytest.mark.parametrize("family", ["dpca", "cva"])
def test_linear_families_write_artifacts_the_service_loads_and_scores_alike(
    process: np.ndarray, family: str, tmp_path: Path
) -> None:
    sensors = [f"s{i}" for i in range(process.shape[1])]
    result = train(
        process[:800],
        sensors,
        TrainConfig(family=family, window=3),
        calibration_values=process[800:],
    )
    assert result.metrics[family]["components"] >= 1
    manifest = export_artifact(
        result, tmp_path / "m" / "1", name="m", version="1", training_data_sha256="0" * 64
    )
    assert manifest.window == 3 and manifest.training["family"] == family
    artifact = load_artifact(tmp_path / "m" / "1")
    x = torch.tensor(
        np.lib.stride_tricks.sliding_window_view(process[800:820], 3, axis=0).transpose(0, 2, 1),
        dtype=torch.float32,
    ).contiguous()
    eager = result.module(x)
    loaded = torch.jit.load(str(tmp_path / "m" / "1" / "model.pt"))
    torch.testing.assert_close(loaded(x), eager)
    program = torch.export.load(str(tmp_path / "m" / "1" / "model.pt2")).module()
    torch.testing.assert_close(program(x)[0], eager)
    assert artifact.manifest.threshold.value == pytest.approx(result.threshold.value)


def test_cva_needs_a_window_of_two() -> None:
    with pytest.raises(ValueError, match="cva needs window >= 2"):
        TrainConfig(family="cva", window=1)
    with pytest.raises(ValueError, match="family must be one of"):
        TrainConfig(family="lstm")


def test_dpca_serves_its_root_in_low_rank_form_with_the_dense_roots_errors(
    process: np.ndarray,
) -> None:
    """DPCA's matrix is a multiple of identity plus its T² components: the low-rank module
    gives the dense root's reconstruction, and so the same per-sensor shares."""
    z = (process - process.mean(0)) / process.std(0)
    wide = np.hstack([z, np.roll(z, 1, axis=0), np.roll(z, 2, axis=0)])  # 15 sensors
    fit = fit_dpca(wide, 3)
    module = fit.residual()
    assert isinstance(module, LowRankResidual)
    assert module.gains.numel() == fit.n_components < 45 / 3
    x = torch.tensor(wide[:60].reshape(20, 45), dtype=torch.float32)
    torch.testing.assert_close(module(x), QuadraticResidual(fit.root)(x), atol=1e-5, rtol=1e-5)


def test_a_root_without_a_dominant_repeated_eigenvalue_stays_dense() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=(12, 12))
    assert isinstance(root_residual(a @ a.T), QuadraticResidual)
    vectors = np.linalg.qr(rng.normal(size=(12, 12)))[0]
    values = np.r_[5.0, 3.0, np.full(10, 0.5)]
    module = root_residual((vectors * values) @ vectors.T)
    assert isinstance(module, LowRankResidual) and module.gains.numel() == 2
    x = torch.tensor(rng.normal(size=(4, 12)), dtype=torch.float32)
    dense = QuadraticResidual((vectors * np.sqrt(values)) @ vectors.T)
    torch.testing.assert_close(module(x), dense(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["dpca", "cva"])
def test_a_covariance_from_fewer_windows_than_inputs_is_warned_about(
    process: np.ndarray, family: str
) -> None:
    """A walkthrough's CVA over 20 readings of 20 sensors, fitted on about 380 windows, flagged
    89% of another normal run with no word: its covariance was singular, set by the ridge."""
    sensors = [f"s{i}" for i in range(process.shape[1])]
    wide = np.hstack([process, process[:, ::-1] + 0.1 * np.roll(process, 1, axis=0)])
    wide_sensors = [*sensors, *(f"r{i}" for i in range(process.shape[1]))]
    short = train(wide[:70], wide_sensors, TrainConfig(family=family, window=6),
                  calibration_values=wide[800:])  # fmt: skip
    windows = short.metrics[family]["windows"]
    assert windows <= 6 * len(wide_sensors)
    (warning,) = [w for w in short.metrics["warnings"] if "singular" in w]
    assert f"its covariance of {6 * len(wide_sensors)} inputs" in warning
    assert f"comes from {windows} training windows" in warning
    long = train(process[:800], sensors, TrainConfig(family=family, window=3),
                 calibration_values=process[800:])  # fmt: skip
    assert long.metrics[family]["windows"] > 3 * len(sensors)
    assert not [w for w in long.metrics["warnings"] if "singular" in w]


def test_each_family_counts_the_windows_its_covariance_comes_from(process: np.ndarray) -> None:
    """DPCA's covariance is of every window; CVA's of the past windows that have a future."""
    z = (process[:50] - process[:50].mean(0)) / process[:50].std(0)
    assert fit_dpca(z, 3).details["windows"] == 48
    assert fit_cva(z, 3).details["windows"] == 45
