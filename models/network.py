"""The sensor autoencoder and the scoring module that ships in an artifact.

:class:`ScoringModule` implements the contract in ``service/scoring/artifact.py``: raw
readings in (scaling baked in as buffers), per-sensor squared errors in standardised units
out. It is written so that ``torch.jit.script`` and ``torch.export`` both accept it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
}


def default_latent(n_inputs: int) -> int:
    """A bottleneck deliberately too narrow to learn the identity: about one latent unit per
    six inputs (50 sensors -> 8). A wider one reconstructs faults as well as normal readings,
    the "overpowered autoencoder" trap."""
    return max(2, round(n_inputs / 6))


def default_hidden(n_inputs: int, latent: int) -> tuple[int, ...]:
    """One hidden layer between input and bottleneck, about 2/3 of the input width
    (50 -> 32 -> 8), never narrower than twice the bottleneck."""
    return (max(2 * latent, round(n_inputs * 0.64)),)


class SensorAutoencoder(nn.Module):
    """An MLP autoencoder over a flattened window of standardised readings.

    Encoder: Linear, activation (ELU by default), Dropout per hidden layer, then a linear
    bottleneck; the decoder mirrors it without dropout.
    """

    def __init__(
        self,
        n_inputs: int,
        *,
        hidden: Sequence[int] | None = None,
        latent: int | None = None,
        dropout: float = 0.1,
        activation: str = "elu",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        latent = default_latent(n_inputs) if latent is None else latent
        hidden = default_hidden(n_inputs, latent) if hidden is None else tuple(hidden)
        if n_inputs < 1 or latent < 1 or any(h < 1 for h in hidden):
            raise ValueError(f"layer sizes must be positive: {n_inputs}, {hidden}, {latent}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.n_inputs = n_inputs
        self.hidden = tuple(hidden)
        self.latent = latent
        encoder: list[nn.Module] = []
        width = n_inputs
        for size in self.hidden:
            encoder += [nn.Linear(width, size), ACTIVATIONS[activation](), nn.Dropout(dropout)]
            width = size
        encoder.append(nn.Linear(width, latent))
        decoder: list[nn.Module] = []
        width = latent
        for size in reversed(self.hidden):
            decoder += [nn.Linear(width, size), ACTIVATIONS[activation]()]
            width = size
        decoder.append(nn.Linear(width, n_inputs))
        self.encoder = nn.Sequential(*encoder)
        self.decoder = nn.Sequential(*decoder)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


class ScoringModule(nn.Module):
    """Raw readings (batch, window, sensors) -> per-sensor squared errors (batch, sensors).

    Errors are in standardised units and averaged over the window positions, so a sensor's
    error is comparable across sensors and window lengths.
    """

    def __init__(
        self,
        autoencoder: SensorAutoencoder,
        *,
        mean: np.ndarray | Sequence[float],
        scale: np.ndarray | Sequence[float],
        window: int,
    ) -> None:
        super().__init__()
        mean_t = torch.as_tensor(np.asarray(mean, dtype=np.float32))
        scale_t = torch.as_tensor(np.asarray(scale, dtype=np.float32))
        n_sensors = int(mean_t.numel())
        if scale_t.numel() != n_sensors:
            raise ValueError(f"{scale_t.numel()} scales for {n_sensors} means")
        if not bool((scale_t > 0).all()):
            raise ValueError("scales must be positive (use 1 for constant sensors)")
        if autoencoder.n_inputs != window * n_sensors:
            raise ValueError(
                f"autoencoder takes {autoencoder.n_inputs} inputs, "
                f"not window {window} x {n_sensors} sensors"
            )
        self.autoencoder = autoencoder
        self.window = window
        self.n_sensors = n_sensors
        self.register_buffer("mean", mean_t.clone())
        self.register_buffer("scale", scale_t.clone())

    def _standardised_reconstruction(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = (x - self.mean) / self.scale
        flat = z.reshape(-1, self.window * self.n_sensors)
        reconstruction = self.autoencoder(flat).reshape(-1, self.window, self.n_sensors)
        return z, reconstruction

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, reconstruction = self._standardised_reconstruction(x)
        return ((reconstruction - z) ** 2).mean(dim=1)

    @torch.jit.export
    def score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Errors and the reconstruction of the latest reading in raw units, in one pass."""
        z, reconstruction = self._standardised_reconstruction(x)
        errors = ((reconstruction - z) ** 2).mean(dim=1)
        latest = reconstruction[:, -1, :] * self.scale + self.mean
        return errors, latest


class ExportableScorer(nn.Module):
    """``torch.export`` traces ``forward`` only: this makes ``forward`` return both outputs."""

    def __init__(self, scoring: ScoringModule) -> None:
        super().__init__()
        self.scoring = scoring

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.scoring.score(x)
