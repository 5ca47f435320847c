"""A network's residual whitened by its out-of-time covariance: the statistic it computes,
what it catches that the sum of squares drowns, and the artifact the service loads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.export import export_artifact
from models.network import SensorAutoencoder
from models.train import train
from models.train_config import TrainConfig
from models.whitened import WhitenedResidual, inverse_root, second_moment
from models.windows import score_readings
from service.scoring.artifact import load_artifact


def quiet_relation(n: int, seed: int) -> np.ndarray:
    """Four loud independent sensors and two that follow sums of them closely: the residual
    along those two relations is quiet, along the loud sensors it is not."""
    rng = np.random.default_rng(seed)
    loud = rng.standard_normal((n, 4))
    follow = np.column_stack([loud[:, 0] + loud[:, 1], loud[:, 2] - loud[:, 3]])
    return np.column_stack([loud, follow + 0.05 * rng.standard_normal((n, 2))])


def test_the_squared_error_is_the_mahalanobis_distance_of_the_residual() -> None:
    torch.manual_seed(0)
    network = SensorAutoencoder(6, latent=2).eval()
    rng = np.random.default_rng(1)
    mixing = rng.standard_normal((6, 6))
    covariance = mixing @ mixing.T + 0.1 * np.eye(6)
    module = WhitenedResidual(network, inverse_root(covariance)).eval()
    x = torch.randn(5, 6)
    with torch.no_grad():
        squared = ((x - module(x)) ** 2).sum(dim=1).double().numpy()
        residual = (x - network(x)).double().numpy()
    ridged = np.linalg.eigvalsh(covariance)
    expected = np.einsum(
        "ij,jk,ik->i",
        residual,
        np.linalg.inv(covariance + 1e-3 * ridged.mean() * np.eye(6)),
        residual,
    )
    np.testing.assert_allclose(squared, expected, rtol=1e-4)


def test_inverse_root_refuses_what_cannot_be_whitened() -> None:
    with pytest.raises(ValueError, match="nothing to whiten"):
        inverse_root(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="not finite"):
        inverse_root(np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="n >= 2"):
        second_moment(np.zeros((1, 4)))


def test_a_bias_along_a_quiet_relation_is_caught_whitened_and_drowned_in_squares() -> None:
    values = quiet_relation(1500, seed=0)
    sensors = [f"s{i}" for i in range(6)]
    flagged = {}
    for residual in ("squares", "whitened"):
        config = TrainConfig(residual=residual, epochs=60, patience=10)
        result = train(values[:900], sensors, config, calibration_values=values[900:1200])
        faulty = values[1200:].copy()
        faulty[:, 4] += 1.0  # 0.7 of the sensor's spread, 20 times its relation's noise
        scores = score_readings(result.module, faulty, 1).mean(axis=1)
        flagged[residual] = float(np.mean(scores > result.threshold.value))
    assert flagged["whitened"] > 0.9
    assert flagged["squares"] < 0.2


def test_the_out_of_time_residual_is_measured_on_readings_the_network_did_not_learn() -> None:
    values = quiet_relation(1200, seed=3)
    sensors = [f"s{i}" for i in range(6)]
    config = TrainConfig(residual="whitened", window=2, epochs=40, patience=5)
    result = train(values[:900], sensors, config, calibration_values=values[900:])
    record = result.metrics["whitened"]
    n_train = result.splits["train"][1]
    assert record["out_of_time_windows"] == n_train - 2  # each half's windows of 2
    whitened = result.module.autoencoder
    assert isinstance(whitened, WhitenedResidual)
    z = (values[:n_train] - result.scaler_mean) / result.scaler_scale
    flat = torch.tensor(np.hstack([z[:-1], z[1:]]), dtype=torch.float32)
    with torch.no_grad():
        in_sample = float((flat - whitened.network(flat)).pow(2).mean())
    assert record["out_of_time_mean_square"] > in_sample


@pytest.mark.parametrize(("family", "window"), [("autoencoder", 3), ("conv", 4), ("vae", 2)])
def test_a_whitened_network_exports_with_one_set_of_numbers_and_sensor_shares(
    family: str, window: int, tmp_path: Path
) -> None:
    values = quiet_relation(900, seed=2)
    sensors = [f"s{i}" for i in range(6)]
    config = TrainConfig(
        family=family, window=window, residual="whitened", epochs=20, patience=5, kl_warmup=5
    )
    result = train(values[:600], sensors, config, calibration_values=values[600:])
    manifest = export_artifact(
        result, tmp_path / "m" / "1", name="m", version="1", training_data_sha256="0" * 64
    )
    assert manifest.training["residual"] == "whitened"
    artifact = load_artifact(tmp_path / "m" / "1")
    windows = np.lib.stride_tricks.sliding_window_view(values[600:640], window, axis=0)
    x = torch.tensor(windows.transpose(0, 2, 1), dtype=torch.float32).contiguous()
    eager = result.module(x)
    torch.testing.assert_close(artifact.module(x), eager)
    program = torch.export.load(str(tmp_path / "m" / "1" / "model.pt2")).module()
    torch.testing.assert_close(program(x)[0], eager, rtol=1e-5, atol=1e-6)
    # Per-sensor shares: non-negative, and together the whitened statistic per input.
    assert bool((eager >= 0).all())
    whitened = result.module.autoencoder
    assert isinstance(whitened, WhitenedResidual)
    z = ((x - result.module.mean) / result.module.scale).reshape(len(x), -1)
    with torch.no_grad():
        statistic = ((z - whitened.network(z)) @ whitened.root).pow(2).sum(dim=1)
    torch.testing.assert_close(eager.sum(dim=1) * window, statistic, rtol=1e-4, atol=1e-5)


def test_only_a_network_family_whitens_and_only_by_a_known_statistic() -> None:
    with pytest.raises(ValueError, match="residual whitened needs a network family"):
        TrainConfig(family="cva", window=2, residual="whitened")
    with pytest.raises(ValueError, match="residual must be one of squares, whitened"):
        TrainConfig(residual="mahalanobis")


def test_a_training_split_too_short_to_halve_is_refused_with_the_reason() -> None:
    values = quiet_relation(200, seed=4)
    sensors = [f"s{i}" for i in range(6)]
    # 150 readings leave a validation split of 22 for windows of 15; each half of the
    # training split leaves one of 10.
    config = TrainConfig(residual="whitened", window=15, epochs=2, patience=1)
    with pytest.raises(ValueError, match="residual whitened: a network trained on one half"):
        train(values[:150], sensors, config, calibration_values=values[150:])


def test_whitening_from_fewer_windows_than_inputs_is_warned_with_the_numbers() -> None:
    """40 sensors over 8 readings are 320 inputs; the halves of a short training split give
    fewer out-of-time windows than that, so the covariance is singular."""
    rng = np.random.default_rng(6)
    values = rng.normal(size=(500, 40)) @ rng.normal(size=(40, 40))
    sensors = [f"s{i}" for i in range(40)]
    config = TrainConfig(residual="whitened", window=8, epochs=2, patience=1)
    result = train(values[:360], sensors, config, calibration_values=values[360:])
    windows = result.metrics["whitened"]["out_of_time_windows"]
    assert windows < 320
    assert any(
        f"from {windows} out-of-time windows for 320 inputs" in warning
        for warning in result.metrics["warnings"]
    )


def test_out_of_time_residuals_are_in_the_deployed_models_units(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each half is scored by a network standardised on the other half; its residuals are
    converted to the deployed model's scale, reading by reading. With folds whose network
    reconstructs nothing (all zeros), a residual is the reading less the fold's mean over the
    deployed scale, whatever the halves' spreads: a ratio inverted or laid out by sensor
    instead of by reading would not give that."""
    import models.train as training

    rng = np.random.default_rng(7)
    values = rng.normal(size=(200, 3))
    values[100:, 0] *= 10.0  # sensor 0 spreads ten times wider in the second half
    values[:, 2] += 50.0
    scale = np.array([4.0, 1.5, 0.5])  # the deployed model's, deliberately unlike either half

    class Nothing(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros_like(x)

    class Fold:
        def __init__(self, fit: np.ndarray) -> None:
            self.scaler_mean = fit.mean(axis=0)
            self.scaler_scale = fit.std(axis=0)
            self.module = type("M", (), {"autoencoder": Nothing()})()

    monkeypatch.setattr(training, "train", lambda fit, *_args, **_kw: Fold(fit))
    config = TrainConfig(window=2, residual="whitened")
    residuals = training.out_of_time_residuals(values, ["a", "b", "c"], config, scale)
    halves = ((values[:100], values[100:]), (values[100:], values[:100]))
    expected = []
    for fit, scored in halves:
        z = (scored - fit.mean(axis=0)) / scale  # the reading less the fold's mean, deployed units
        windows = np.lib.stride_tricks.sliding_window_view(z, 2, axis=0).transpose(0, 2, 1)
        expected.append(windows.reshape(len(windows), -1))
    np.testing.assert_allclose(residuals, np.concatenate(expected), rtol=1e-5, atol=1e-5)
