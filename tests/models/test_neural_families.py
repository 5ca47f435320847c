"""The temporal convolutional autoencoder and the VAE: trained through ``train`` and
written as artifacts the service loads, with the same numbers eager, scripted and exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.conv import TemporalConvAutoencoder
from models.export import export_artifact
from models.fitting import posterior_collapse_warning
from models.train import train
from models.train_config import TrainConfig
from models.variational import VariationalAutoencoder
from tests.models.test_linear import ar_process


@pytest.mark.parametrize(("family", "window"), [("conv", 4), ("vae", 2)])
def test_the_family_trains_and_exports_with_one_set_of_numbers(
    family: str, window: int, tmp_path: Path
) -> None:
    process = ar_process(900, 5, seed=0)
    sensors = [f"s{i}" for i in range(5)]
    config = TrainConfig(family=family, window=window, epochs=30, patience=5, kl_warmup=5)
    result = train(process[:600], sensors, config, calibration_values=process[600:])
    assert result.config.family == family
    export_artifact(
        result, tmp_path / "m" / "1", name="m", version="1", training_data_sha256="0" * 64
    )
    windows = np.lib.stride_tricks.sliding_window_view(process[600:640], window, axis=0)
    x = torch.tensor(windows.transpose(0, 2, 1), dtype=torch.float32).contiguous()
    eager = result.module(x)
    scripted = torch.jit.load(str(tmp_path / "m" / "1" / "model.pt"))
    torch.testing.assert_close(scripted(x), eager)
    program = torch.export.load(str(tmp_path / "m" / "1" / "model.pt2")).module()
    torch.testing.assert_close(program(x)[0], eager, rtol=1e-5, atol=1e-6)
    again = result.module(x)  # the VAE scores with the posterior mean: no sampling
    torch.testing.assert_close(again, eager, rtol=0, atol=0)


def test_the_conv_bottleneck_is_narrower_than_the_sensors() -> None:
    net = TemporalConvAutoencoder(12, 8)
    assert net.latent < 12 and net.n_inputs == 96
    assert net(torch.zeros(3, 96)).shape == (3, 96)
    with pytest.raises(ValueError, match="kernel must be odd"):
        TemporalConvAutoencoder(12, 8, kernel=2)


def test_posterior_collapse_is_warned_about_with_the_numbers() -> None:
    warning = posterior_collapse_warning(np.array([0.001, 0.004]))
    assert warning is not None
    assert "none of the VAE's 2 latent dimensions" in warning and "0.004 nats" in warning
    assert posterior_collapse_warning(np.array([0.001, 0.3])) is None


def test_a_vae_on_structured_readings_keeps_latent_dimensions_active() -> None:
    process = ar_process(800, 6, seed=2)
    sensors = [f"s{i}" for i in range(6)]
    config = TrainConfig(family="vae", epochs=25, patience=5, kl_warmup=5, noise_std=0.0)
    result = train(process, sensors, config)
    assert result.metrics["vae"]["active_latent"] >= 1
    assert not any("posterior collapse" in w for w in result.metrics["warnings"])


def test_the_vae_samples_only_in_training() -> None:
    net = VariationalAutoencoder(8, latent=2).eval()
    x = torch.randn(4, 8)
    torch.testing.assert_close(net(x), net(x), rtol=0, atol=0)
    sampled, kl = net.sampled(x, torch.Generator().manual_seed(0))
    assert sampled.shape == (4, 8) and kl.shape == (4, 2) and bool((kl >= 0).all())
