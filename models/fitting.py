"""Fitting a network: Adam on the reconstruction error (denoising when configured, a VAE's KL
term annealed), early stopping that restores the best weights, and deterministic torch while
it runs. What is fitted, and on which readings, is models/train.py's business."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from models.conv import TemporalConvAutoencoder
from models.network import PlaneResidualAutoencoder, SensorAutoencoder, principal_plane
from models.train_config import TrainConfig
from models.variational import ACTIVE_KL, VariationalAutoencoder


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    train_loss: float
    val_loss: float
    seconds: float


ProgressCallback = Callable[[EpochRecord, int], None]
"""Called after every epoch with the record and the epoch budget."""


class TrainingDiverged(ValueError):
    """No epoch gave a finite validation loss: the settings, not the data's shape, failed."""


@contextmanager
def _deterministic_torch(seed: int) -> Iterator[None]:
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


Reconstructor = (
    SensorAutoencoder | PlaneResidualAutoencoder | TemporalConvAutoencoder | VariationalAutoencoder
)


def train_network(
    train_x: torch.Tensor,
    val_x: torch.Tensor,
    n_sensors: int,
    config: TrainConfig,
    progress: ProgressCallback | None,
) -> tuple[Reconstructor, list[EpochRecord], int]:
    with _deterministic_torch(config.seed):
        autoencoder: Reconstructor
        if config.family == "conv":
            autoencoder = TemporalConvAutoencoder(
                n_sensors,
                config.window,
                channels=config.hidden[0] if config.hidden else None,
                latent=config.latent,
                dropout=config.dropout,
                activation=config.activation,
            )
        elif config.family == "vae":
            autoencoder = VariationalAutoencoder(
                config.window * n_sensors,
                hidden=config.hidden,
                latent=config.latent,
                dropout=config.dropout,
                activation=config.activation,
            )
        else:
            autoencoder = SensorAutoencoder(
                config.window * n_sensors,
                hidden=config.hidden,
                latent=config.latent,
                dropout=config.dropout,
                activation=config.activation,
            )
            if config.plane_variance is not None:
                # Fitted on the training split only, like the scaler.
                plane = principal_plane(train_x.numpy(), config.plane_variance)
                autoencoder = PlaneResidualAutoencoder(plane, autoencoder)
        history, best_epoch = _fit(autoencoder, train_x, val_x, config, progress)
    return autoencoder, history, best_epoch


def _fit(
    autoencoder: nn.Module,
    train_x: torch.Tensor,
    val_x: torch.Tensor,
    config: TrainConfig,
    progress: ProgressCallback | None,
) -> tuple[list[EpochRecord], int]:
    """Adam on MSE (denoising when configured); early stopping restores the best weights.
    A VAE adds its KL term, per input and weighted from 0 to 1 over ``kl_warmup`` epochs;
    its validation loss counts the whole KL, and only epochs after the warm-up can be best."""
    variational = isinstance(autoencoder, VariationalAutoencoder)
    n_inputs = int(train_x.shape[1])
    eligible_from = min(config.kl_warmup, config.epochs) if variational else 1
    optimiser = torch.optim.Adam(
        autoencoder.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    loss_fn = nn.MSELoss()
    generator = torch.Generator().manual_seed(config.seed)
    history: list[EpochRecord] = []
    best_loss, best_epoch = math.inf, 0
    best_state = copy.deepcopy(autoencoder.state_dict())
    for epoch in range(1, config.epochs + 1):
        started = time.perf_counter()
        autoencoder.train()
        order = torch.randperm(len(train_x), generator=generator)
        total = 0.0
        for start in range(0, len(train_x), config.batch_size):
            target = train_x[order[start : start + config.batch_size]]
            inputs = _corrupt(target, config, generator)
            optimiser.zero_grad()
            if variational:
                assert isinstance(autoencoder, VariationalAutoencoder)
                reconstruction, kl = autoencoder.sampled(inputs, generator)
                weight = min(1.0, epoch / config.kl_warmup) if config.kl_warmup else 1.0
                loss = loss_fn(reconstruction, target) + weight * kl.sum(1).mean() / n_inputs
            else:
                loss = loss_fn(autoencoder(inputs), target)
            loss.backward()
            optimiser.step()
            total += loss.item() * len(target)
        train_loss = total / len(train_x)
        autoencoder.eval()
        with torch.no_grad():
            val_loss = float(loss_fn(autoencoder(val_x), val_x))
            if variational:
                val_loss += float(latent_kl(autoencoder, val_x).sum() / n_inputs)
        record = EpochRecord(epoch, train_loss, val_loss, time.perf_counter() - started)
        history.append(record)
        if progress is not None:
            progress(record, config.epochs)
        if epoch < eligible_from:
            continue
        if val_loss < best_loss - 1e-7:
            best_loss, best_epoch = val_loss, epoch
            best_state = copy.deepcopy(autoencoder.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    if best_epoch == 0:
        raise TrainingDiverged(
            f"training diverged: no epoch gave a finite validation loss (last train loss "
            f"{history[-1].train_loss:g}); lower --lr (now {config.lr:g}) or check the data"
        )
    autoencoder.load_state_dict(best_state)
    autoencoder.eval()
    return history, best_epoch


def posterior_collapse_warning(kl: np.ndarray) -> str | None:
    """A warning when no latent dimension of a VAE carries information (average KL of each,
    ``kl``, at most ACTIVE_KL nats): it then reconstructs every reading as the average one."""
    if (kl > ACTIVE_KL).any():
        return None
    return (
        f"posterior collapse: none of the VAE's {len(kl)} latent dimensions carries "
        f"information (the largest average KL is {float(np.max(kl, initial=0.0)):.2g} nats, "
        f"below {ACTIVE_KL}), so it reconstructs every reading as the average one; use a "
        "longer --kl-warmup, a smaller --latent, or another --family"
    )


def latent_kl(autoencoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A VAE's average KL per latent dimension over ``x`` (its posterior against the prior)."""
    assert isinstance(autoencoder, VariationalAutoencoder)
    with torch.no_grad():
        features = autoencoder.body(x)
        mean = autoencoder.mean(features)
        log_variance = autoencoder.log_variance(features).clamp(-10, 10)
        kl: torch.Tensor = 0.5 * (mean**2 + log_variance.exp() - 1 - log_variance)
    return kl.mean(dim=0)


def _corrupt(batch: torch.Tensor, config: TrainConfig, generator: torch.Generator) -> torch.Tensor:
    if config.noise_std > 0:
        batch = batch + config.noise_std * torch.randn(batch.shape, generator=generator)
    if config.mask_prob > 0:
        keep = torch.rand(batch.shape, generator=generator) >= config.mask_prob
        batch = batch * keep
    return batch
