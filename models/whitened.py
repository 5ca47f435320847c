"""A network's residual scored by its Mahalanobis distance, in the artifact's contract.

The plain score of an autoencoder is the sum of its squared standardised errors: every
direction of the residual window weighs the same. Normal operation leaves a large residual
along some directions and almost none along others (sensors the network predicts well from
the rest and from their own past), so a fault that moves the window along a quiet direction
is drowned by the noise of the loud ones. The classical remedy is a statistic on the
residual: ``rᵀ C⁻¹ r`` with ``C`` the residual's covariance (the Q and T² of PCA are this on a
linear model).

``C`` must be the covariance of the residual on readings the network did *not* learn. On
the readings it was trained on the residual is smaller, most of all along the directions
it fits best (on TEP's training run more than twice as small: docs/training.md), and
whitening with the training residual's covariance amplifies exactly the directions that grow. So the
training split is cut into two halves in time, a network with the same settings is trained
on each and scores the other (as models/out_of_time.py does for a threshold); ``C`` is the
second moment of those out-of-time residuals, and the deployed network is the one trained
on the whole split. It is whitened as CVA is (:func:`models.linear.inverse_root`, its ridge
included): directions with almost no residual would otherwise be amplified without bound.

Served as the reconstruction ``x - W r`` (``r = x - f(x)``, ``W = C^{-1/2}`` symmetric): its
squared error per coordinate ``(W r)²`` adds up to the statistic, and summed per sensor it
is a non-negative, additive contribution, as the service needs (the trick of
models/linear.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from models import linear

if TYPE_CHECKING:  # the networks it wraps build on models/network.py
    from models.conv import TemporalConvAutoencoder
    from models.network import PlaneResidualAutoencoder, SensorAutoencoder
    from models.variational import VariationalAutoencoder

RESIDUALS = ("squares", "whitened")
"""How a network family's residual is scored: the sum of its squares, or whitened."""


def inverse_root(second_moment: np.ndarray) -> np.ndarray:
    """The symmetric ``C^{-1/2}`` of a residual's second-moment matrix, its eigenvalues
    raised by RIDGE x their mean first.

    >>> inverse_root(np.diag([4.0, 1.0])).round(3).tolist()
    [[0.5, 0.0], [0.0, 0.999]]
    """
    matrix = np.asarray(second_moment, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"a second-moment matrix must be square, got {matrix.shape}")
    if not np.isfinite(matrix).all():
        raise ValueError("the residual's second-moment matrix is not finite")
    if np.clip(np.linalg.eigvalsh((matrix + matrix.T) / 2), 0.0, None).sum() <= 0:
        raise ValueError("the network's out-of-time residual is zero: there is nothing to whiten")
    return linear.inverse_root(matrix)  # CVA's whitening, ridge included


def second_moment(residuals: np.ndarray) -> np.ndarray:
    """``E[r rᵀ]`` of residual windows ``(n, n_inputs)``, not centred: a residual that sits
    off zero on readings the network did not learn is part of what normal looks like."""
    r = np.asarray(residuals, dtype=np.float64)
    if r.ndim != 2 or len(r) < 2:
        raise ValueError(f"residuals must be (n >= 2, n_inputs), got {r.shape}")
    return np.asarray(r.T @ r / len(r))


class WhitenedResidual(nn.Module):
    """``x -> x - (x - f(x)) @ W``: a reconstruction whose squared error is the whitened
    residual of the network ``f``, ``((x - f(x)) W)²`` (``W`` symmetric)."""

    if TYPE_CHECKING:  # a buffer; TorchScript reads class annotations, so only for mypy
        root: torch.Tensor

    def __init__(
        self,
        network: SensorAutoencoder
        | PlaneResidualAutoencoder
        | TemporalConvAutoencoder
        | VariationalAutoencoder,
        root: np.ndarray,
    ) -> None:
        super().__init__()
        w = torch.as_tensor(np.asarray(root, dtype=np.float32))
        if w.shape != (network.n_inputs, network.n_inputs):
            raise ValueError(
                f"root of shape {tuple(w.shape)} does not fit {network.n_inputs} inputs"
            )
        self.network = network
        self.n_inputs = network.n_inputs
        self.register_buffer("root", w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x - self.network(x)
        reconstruction: torch.Tensor = x - residual @ self.root
        return reconstruction
