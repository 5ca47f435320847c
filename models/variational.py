"""A variational autoencoder over a window of readings (Kingma & Welling 2014).

Trained on the evidence lower bound with the KL term's weight annealed from 0 to 1 over the
first epochs (Bowman et al. 2016), so the decoder learns to reconstruct before the prior
pulls the codes together. At inference the decoder reads the posterior *mean*: the score is
then deterministic, as the service and the threshold need. A latent dimension whose average
KL stays near 0 carries no information (posterior collapse); training reports how many are
active and warns when none is.
"""

from __future__ import annotations

import torch
from torch import nn

from models.network import dense_layers, layer_sizes

ACTIVE_KL = 0.01
"""Average KL (nats) above which a latent dimension counts as active (Burda et al. 2016)."""


class VariationalAutoencoder(nn.Module):
    def __init__(
        self,
        n_inputs: int,
        *,
        hidden: tuple[int, ...] | None = None,
        latent: int | None = None,
        dropout: float = 0.1,
        activation: str = "elu",
    ) -> None:
        super().__init__()
        self.hidden, self.latent = layer_sizes(n_inputs, hidden, latent, dropout, activation)
        self.n_inputs = n_inputs
        body, width = dense_layers(n_inputs, self.hidden, activation, dropout)
        self.body = nn.Sequential(*body)
        self.mean = nn.Linear(width, self.latent)
        self.log_variance = nn.Linear(width, self.latent)
        decoder, width = dense_layers(self.latent, self.hidden[::-1], activation, None)
        self.decoder = nn.Sequential(*decoder, nn.Linear(width, n_inputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        decoded: torch.Tensor = self.decoder(self.mean(self.body(x)))
        return decoded

    @torch.jit.ignore  # type: ignore[untyped-decorator]
    def sampled(
        self, x: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """A reconstruction from a sampled code, and each input's KL per latent dimension
        ``(batch, latent)``, for training."""
        features = self.body(x)
        mean, log_variance = self.mean(features), self.log_variance(features).clamp(-10, 10)
        noise = torch.randn(mean.shape, generator=generator)
        code = mean + noise * torch.exp(0.5 * log_variance)
        kl = 0.5 * (mean**2 + log_variance.exp() - 1 - log_variance)
        return self.decoder(code), kl
