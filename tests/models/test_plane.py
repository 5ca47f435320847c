"""The optional linear principal plane (``--plane-variance``): fitted on the training split
only, exact extrapolation along the plane, export parity, and the training CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.__main__ import main
from models.export import export_artifact, script_module
from models.network import PlaneResidualAutoencoder, SensorAutoencoder, principal_plane
from models.synthetic import generate_plant
from models.train import TrainResult, train
from models.train_config import TrainConfig
from models.windows import score_readings
from service.scoring.artifact import load_artifact, sha256_array
from service.scoring.manifest import EXPORT_FILE

N_SENSORS = 8
PLANE = TrainConfig(epochs=4, patience=2, batch_size=64, seed=5, plane_variance=0.9)


@pytest.fixture(scope="module")
def plant() -> np.ndarray:
    torch.set_num_threads(1)
    return generate_plant(1200, seed=21, n_sensors=N_SENSORS).values


@pytest.fixture(scope="module")
def sensors() -> list[str]:
    return [f"s{i}" for i in range(N_SENSORS)]


@pytest.fixture(scope="module")
def planed(plant: np.ndarray, sensors: list[str]) -> TrainResult:
    return train(plant, sensors, PLANE)


def plane_of(result: TrainResult) -> np.ndarray:
    autoencoder = result.module.autoencoder
    assert isinstance(autoencoder, PlaneResidualAutoencoder)
    return np.asarray(autoencoder.plane.numpy())


def test_principal_plane_keeps_the_requested_variance() -> None:
    rng = np.random.default_rng(0)
    # Three strong directions and weak noise in 10 dimensions.
    x = rng.normal(size=(500, 3)) @ rng.normal(size=(3, 10)) * 3 + rng.normal(size=(500, 10))
    x -= x.mean(axis=0)
    plane = principal_plane(x, 0.9)
    k = plane.shape[1]
    np.testing.assert_allclose(plane.T @ plane, np.eye(k), atol=1e-5)
    singular = np.linalg.svd(x, compute_uv=False) ** 2
    share = np.cumsum(singular) / singular.sum()
    assert share[k - 1] >= 0.9 > (share[k - 2] if k > 1 else 0.0)
    assert principal_plane(x, 0.999).shape[1] > k


@pytest.mark.parametrize("variance", [0.0, 1.0, -0.5])
def test_principal_plane_refuses_a_share_outside_zero_one(variance: float) -> None:
    with pytest.raises(ValueError, match="variance_to_keep"):
        principal_plane(np.ones((5, 3)), variance)


def test_principal_plane_refuses_inputs_without_variance() -> None:
    with pytest.raises(ValueError, match="no variance"):
        principal_plane(np.zeros((5, 3)), 0.9)


def test_config_refuses_a_plane_share_outside_zero_one() -> None:
    with pytest.raises(ValueError, match="plane_variance"):
        TrainConfig(plane_variance=1.0)


def test_plane_is_fitted_on_the_training_split_only(
    planed: TrainResult, plant: np.ndarray, sensors: list[str]
) -> None:
    start, stop = planed.splits["train"]
    z = (plant[start:stop] - planed.scaler_mean) / planed.scaler_scale
    np.testing.assert_allclose(plane_of(planed), principal_plane(z, 0.9), atol=1e-6)
    assert planed.metrics["plane_components"] == plane_of(planed).shape[1]

    perturbed = plant.copy()
    perturbed[stop:] = perturbed[stop:] * 3.0 + 50.0  # validation and calibration rows
    other = train(perturbed, sensors, PLANE)
    np.testing.assert_array_equal(plane_of(other), plane_of(planed))


def test_moving_along_the_plane_leaves_the_error_unchanged(
    planed: TrainResult, plant: np.ndarray, sensors: list[str]
) -> None:
    """Why the option exists: a reading moved twice as far along the directions normal
    operation varies in scores exactly as before, while the plain autoencoder's error
    grows because it never saw that range."""
    start, stop = planed.splits["validation"]
    rows = plant[start:stop]
    basis = plane_of(planed).astype(np.float64)

    def moved(result: TrainResult) -> np.ndarray:
        z = (rows - result.scaler_mean) / result.scaler_scale
        z = z + (z @ basis) @ basis.T  # the in-plane part doubled
        return np.asarray(z * result.scaler_scale + result.scaler_mean)

    before = score_readings(planed.module, rows, 1).mean(axis=1)
    after = score_readings(planed.module, moved(planed), 1).mean(axis=1)
    np.testing.assert_allclose(after, before, rtol=1e-3, atol=1e-4)

    plain = train(plant, sensors, TrainConfig(**{**PLANE.__dict__, "plane_variance": None}))
    plain_before = score_readings(plain.module, rows, 1).mean(axis=1)
    plain_after = score_readings(plain.module, moved(plain), 1).mean(axis=1)
    assert plain_after.mean() > 1.5 * plain_before.mean()


def test_plane_model_scripts_exports_and_reloads_identically(
    planed: TrainResult, plant: np.ndarray, tmp_path: Path
) -> None:
    out = tmp_path / "planed" / "1"
    export_artifact(
        planed,
        out,
        name="planed",
        version="1",
        training_data_sha256=sha256_array(plant),
        training_data={"training": {"source": "synthetic"}},
    )
    x = torch.tensor(plant[:7], dtype=torch.float32).unsqueeze(1)
    x[0, 0, 0] += 40 * float(planed.scaler_scale[0])
    with torch.inference_mode():
        eager = planed.module.score(x)
        scripted = script_module(planed.module).score(x)
        artifact = load_artifact(out)
        loaded = artifact.module.score(x)
        program = torch.export.load(str(out / EXPORT_FILE)).module()(x)
    for other in (scripted, loaded, program):
        torch.testing.assert_close(other[0], eager[0], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(other[1], eager[1], rtol=1e-6, atol=1e-5)
    assert float(eager[0][0, 0]) > 100
    assert artifact.manifest.training["plane_variance"] == 0.9


def test_train_cli_builds_a_plane_model(
    plant: np.ndarray, sensors: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "train.npy"
    np.save(data, plant)
    args = ["train", "--data", str(data), "--out", str(tmp_path), "--name", "p", "--version", "1"]
    args += ["--epochs", "2", "--patience", "1", "--plane-variance", "0.8"]
    assert main(args) == 0
    assert "linear plane of" in capsys.readouterr().err
    artifact = load_artifact(tmp_path / "p" / "1")
    assert artifact.manifest.training["plane_variance"] == 0.8


def test_plane_must_match_the_autoencoder_width() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        PlaneResidualAutoencoder(np.eye(4, 2), SensorAutoencoder(5))
