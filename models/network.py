"""The sensor autoencoder and the scoring module that ships in an artifact.

:class:`ScoringModule` implements the contract in ``service/scoring/artifact.py``: raw
readings in (scaling baked in as buffers), per-sensor squared errors in standardised units
out. It is written so that ``torch.jit.script`` and ``torch.export`` both accept it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from models.baselines import components_keeping
from models.linear import LowRankResidual, QuadraticResidual

if TYPE_CHECKING:  # they build on this module's defaults
    from models.conv import TemporalConvAutoencoder
    from models.variational import VariationalAutoencoder
    from models.whitened import WhitenedResidual

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


def layer_sizes(
    n_inputs: int,
    hidden: Sequence[int] | None,
    latent: int | None,
    dropout: float,
    activation: str,
) -> tuple[tuple[int, ...], int]:
    """The hidden sizes and the bottleneck, defaults filled in and every setting checked."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    latent = default_latent(n_inputs) if latent is None else latent
    sizes = default_hidden(n_inputs, latent) if hidden is None else tuple(hidden)
    if n_inputs < 1 or latent < 1 or any(h < 1 for h in sizes):
        raise ValueError(f"layer sizes must be positive: {n_inputs}, {sizes}, {latent}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    return sizes, latent


def dense_layers(
    width: int, sizes: Sequence[int], activation: str, dropout: float | None
) -> tuple[list[nn.Module], int]:
    """Linear + activation (+ dropout) per size, from ``width``; and the last width."""
    layers: list[nn.Module] = []
    for size in sizes:
        layers += [nn.Linear(width, size), ACTIVATIONS[activation]()]
        if dropout is not None:
            layers.append(nn.Dropout(dropout))
        width = size
    return layers, width


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
        self.hidden, self.latent = layer_sizes(n_inputs, hidden, latent, dropout, activation)
        self.n_inputs = n_inputs
        encoder, width = dense_layers(n_inputs, self.hidden, activation, dropout)
        self.encoder = nn.Sequential(*encoder, nn.Linear(width, self.latent))
        decoder, width = dense_layers(self.latent, self.hidden[::-1], activation, None)
        self.decoder = nn.Sequential(*decoder, nn.Linear(width, n_inputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        decoded: torch.Tensor = self.decoder(self.encoder(x))
        return decoded


def principal_plane(inputs: np.ndarray, variance_to_keep: float) -> np.ndarray:
    """Orthonormal basis ``(n_inputs, k)`` of the fewest principal directions of standardised
    training inputs that keep ``variance_to_keep`` of their variance (the PCA baseline's rule)."""
    if not 0.0 < variance_to_keep < 1.0:
        raise ValueError(f"variance_to_keep must be in (0, 1), got {variance_to_keep}")
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"a plane needs (n_readings >= 2, n_inputs) inputs, got {x.shape}")
    _, singular, vt = np.linalg.svd(x, full_matrices=False)
    variance = singular**2
    if variance.sum() <= 0:
        raise ValueError("training inputs have no variance: there is no plane to fit")
    k = min(components_keeping(variance, variance_to_keep), len(variance))
    return np.ascontiguousarray(vt[:k].T, dtype=np.float32)


class PlaneResidualAutoencoder(nn.Module):
    """A linear principal plane plus an autoencoder on what the plane leaves over.

    A plain autoencoder reconstructs only the range it was trained on: a reading that moves
    further along the directions normal operation already varies in (a wider operating range,
    a load change) is reconstructed badly and flagged. The plane extrapolates by construction,
    and the nonlinear part only ever sees the residual, which such a move leaves in range.
    The plane is fitted on the training split and frozen (a buffer, not a parameter).
    """

    if TYPE_CHECKING:  # a buffer; TorchScript reads class annotations, so only for mypy
        plane: torch.Tensor

    def __init__(self, plane: np.ndarray, residual: SensorAutoencoder) -> None:
        super().__init__()
        basis = torch.as_tensor(np.asarray(plane, dtype=np.float32))
        if basis.ndim != 2 or basis.shape[0] != residual.n_inputs:
            raise ValueError(
                f"plane of shape {tuple(basis.shape)} does not fit {residual.n_inputs} inputs"
            )
        self.n_inputs = residual.n_inputs
        self.register_buffer("plane", basis.clone())
        self.residual = residual

    @property
    def n_components(self) -> int:
        return int(self.plane.shape[1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        in_plane = (x @ self.plane) @ self.plane.T
        off_plane: torch.Tensor = self.residual(x - in_plane)
        return in_plane + off_plane


class ScoringModule(nn.Module):
    """Raw readings (batch, window, sensors) -> per-sensor squared errors (batch, sensors).

    Errors are in standardised units and averaged over the window positions, so a sensor's
    error is comparable across sensors and window lengths.
    """

    if TYPE_CHECKING:  # buffers; TorchScript reads class annotations, so only for mypy
        mean: torch.Tensor
        scale: torch.Tensor

    def __init__(
        self,
        autoencoder: SensorAutoencoder
        | PlaneResidualAutoencoder
        | QuadraticResidual
        | LowRankResidual
        | TemporalConvAutoencoder
        | VariationalAutoencoder
        | WhitenedResidual,
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
        # Refused, not broadcast: (n, sensors) against the (1, window, sensors) reconstruction
        # would give (n, n, sensors) of plausible numbers in which a spike vanishes.
        if x.dim() != 3 or x.size(1) != self.window or x.size(2) != self.n_sensors:
            raise ValueError(
                "expected raw readings shaped (batch, "
                + str(self.window)
                + ", "
                + str(self.n_sensors)
                + "): a batch of windows of the model's window and sensors, got "
                + str(x.shape)
            )
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
