"""A 1-D temporal convolutional autoencoder over a window of readings.

The window is treated as a short sequence, sensors as channels: each layer mixes every
sensor over a few neighbouring readings, so the model learns how readings move together in
time with far fewer weights than a dense autoencoder over the flattened window. The
bottleneck is narrower than the input at every time step (fewer channels than sensors), so
the network cannot learn to copy its input.
"""

from __future__ import annotations

import torch
from torch import nn

from models.network import ACTIVATIONS, default_hidden, default_latent


class TemporalConvAutoencoder(nn.Module):
    """Flattened ``(batch, window * n_sensors)`` in, the same shape out (the contract of
    :class:`models.network.ScoringModule`'s reconstructor)."""

    def __init__(
        self,
        n_sensors: int,
        window: int,
        *,
        channels: int | None = None,
        latent: int | None = None,
        kernel: int = 3,
        dropout: float = 0.1,
        activation: str = "elu",
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be odd and positive, got {kernel}")
        latent = default_latent(n_sensors) if latent is None else latent
        channels = default_hidden(n_sensors, latent)[0] if channels is None else channels
        if min(n_sensors, window, latent, channels) < 1:
            raise ValueError(f"sizes must be positive: {n_sensors}, {window}, {latent}, {channels}")
        self.n_sensors = n_sensors
        self.window = window
        self.n_inputs = n_sensors * window
        self.latent = latent
        self.channels = channels
        pad = kernel // 2
        self.encoder = nn.Sequential(
            nn.Conv1d(n_sensors, channels, kernel, padding=pad),
            ACTIVATIONS[activation](),
            nn.Dropout(dropout),
            nn.Conv1d(channels, latent, kernel, padding=pad),
        )
        self.decoder = nn.Sequential(
            nn.Conv1d(latent, channels, kernel, padding=pad),
            ACTIVATIONS[activation](),
            nn.Conv1d(channels, n_sensors, kernel, padding=pad),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        sequence = x.reshape(-1, self.window, self.n_sensors).transpose(1, 2)
        decoded: torch.Tensor = self.decoder(self.encoder(sequence))
        return decoded.transpose(1, 2).reshape(-1, self.n_inputs)
