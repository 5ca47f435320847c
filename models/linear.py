"""Linear dynamic references, DPCA and CVA, in the autoencoder's artifact contract.

Both score a window of standardised readings ``z`` (flattened, oldest first) by a quadratic
statistic ``S = zᵀ M z``: Hotelling's T² inside a model subspace plus the squared residual Q
outside it, each divided by its mean on the training windows so that neither swamps the
other (the combined index of Yue & Qin, with means where they use limits).

To serve them with no special case they are written as a "reconstruction" ``z - R z`` with
``R`` the symmetric square root of ``M``: the per-coordinate squared error ``(R z)²`` then
adds up to ``S`` exactly, and summed per sensor it is the complete decomposition
contribution (Alcala & Qin 2009), non-negative and additive, which is what the service's
per-sensor contributions need. For a pure residual statistic (``M`` a projector) ``z - R z``
is the ordinary PCA reconstruction.

Serving cost: a dense ``R`` costs ``n²`` multiply-adds per window (``n`` = window x sensors).
When one eigenvalue ``μ`` of ``M`` repeats ``m`` times, ``R = √μ I + V (√Λ - √μ) Vᵀ`` over the
other ``n - m`` eigenvectors ``V``, the same matrix applied in ``2n(n - m)``. DPCA's matrix is
``b I`` plus its ``k`` T² components (the residual directions all share the eigenvalue ``b``).
CVA's is ``b C⁻¹ + (a - b) JᵀJ`` (``C`` the regularised covariance of the past windows, ``J``
the state directions): a precision matrix, which has no repeated eigenvalue unless the
training windows span far fewer than ``n`` directions, so CVA's root stays dense and costs
``n²``; any exact factor of a full-rank matrix without structure does. :func:`root_residual`
picks the low-rank form when it is clearly cheaper (:data:`LOW_RANK_SHARE`).

- **DPCA** (Ku, Storer & Georgakis 1995): PCA of the lagged window; T² on the components
  that keep ``variance`` of the training variance, Q on the rest.
- **CVA** (Russell, Chiang & Braatz 2000): the past window (the latest reading included) is
  whitened, the canonical directions most correlated with the next ``window`` readings are
  the states (T²), the remaining whitened directions the residual (Q).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from models.baselines import components_keeping
from models.data import sliding_windows

RIDGE = 1e-3
"""Added to covariance eigenvalues, as a share of their mean, before whitening: directions
with almost no training variance would otherwise be amplified without bound, and a reading
that moves slightly along them on another day would alarm."""


class QuadraticResidual(nn.Module):
    """``x -> x - x @ root``: a reconstruction whose squared error is ``(x @ root)²``."""

    if TYPE_CHECKING:  # a buffer; TorchScript reads class annotations, so only for mypy
        root: torch.Tensor

    def __init__(self, root: np.ndarray) -> None:
        super().__init__()
        r = torch.as_tensor(np.asarray(root, dtype=np.float32))
        if r.ndim != 2 or r.shape[0] != r.shape[1]:
            raise ValueError(f"root must be a square matrix, got {tuple(r.shape)}")
        self.n_inputs = int(r.shape[0])
        self.register_buffer("root", r.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - x @ self.root


class LowRankResidual(nn.Module):
    """``x -> x - x @ R`` for ``R = c I + V diag(gains) Vᵀ``, without forming ``R``: the same
    reconstruction as :class:`QuadraticResidual` in ``2 n r`` multiply-adds instead of ``n²``."""

    if TYPE_CHECKING:  # buffers; TorchScript reads class annotations, so only for mypy
        vectors: torch.Tensor
        vectors_t: torch.Tensor
        gains: torch.Tensor

    def __init__(self, scale: float, vectors: np.ndarray, gains: np.ndarray) -> None:
        super().__init__()
        v = torch.as_tensor(np.ascontiguousarray(vectors, dtype=np.float32))
        g = torch.as_tensor(np.ascontiguousarray(gains, dtype=np.float32))
        if v.ndim != 2 or g.shape != (v.shape[1],):
            raise ValueError(f"vectors {tuple(v.shape)} and gains {tuple(g.shape)} do not match")
        self.n_inputs = int(v.shape[0])
        self.scale = float(scale)
        self.register_buffer("vectors", v.clone())
        self.register_buffer("vectors_t", v.T.contiguous())
        self.register_buffer("gains", g.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - (self.scale * x + ((x @ self.vectors) * self.gains) @ self.vectors_t)


LOW_RANK_SHARE = 1 / 3
"""The low-rank form is used when the other eigenvectors are at most this share of ``n``: it
runs three products where the dense form runs one, so it pays only well below ``n / 2``."""
REPEAT_TOLERANCE = 1e-9
"""Eigenvalues of a statistic's matrix closer than this share of the largest are one repeated
eigenvalue: far below float32's resolution, so the low-rank root scores as the dense one."""


def root_residual(matrix: np.ndarray) -> QuadraticResidual | LowRankResidual:
    """``z - R z`` for the symmetric root ``R`` of ``matrix``, in the low-rank form when the
    eigenvalues outside its most repeated one are few enough, else dense."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    values = np.clip(values, 0.0, None)
    n = len(values)
    tolerance = REPEAT_TOLERANCE * max(float(values[-1]), 1e-300)
    # The longest run of (sorted) eigenvalues within the tolerance of each other.
    best, start = (0, 0), 0
    for end in range(n):
        while values[end] - values[start] > tolerance:
            start += 1
        if end + 1 - start > best[1] - best[0]:
            best = (start, end + 1)
    kept = np.r_[0 : best[0], best[1] : n]
    if LOW_RANK_SHARE * n < len(kept):
        return QuadraticResidual((vectors * np.sqrt(values)) @ vectors.T)
    repeated = float(np.sqrt(values[best[0] : best[1]].mean()))
    return LowRankResidual(repeated, vectors[:, kept], np.sqrt(values[kept]) - repeated)


@dataclass(frozen=True)
class LinearFit:
    """A fitted linear statistic: the matrix root and what it was built from."""

    matrix: np.ndarray
    """The statistic's ``(window * n_sensors,)*2`` matrix ``M``."""
    n_components: int
    """Components (DPCA) or states (CVA) scored by T²."""
    details: dict[str, float | int]

    @property
    def root(self) -> np.ndarray:
        """The symmetric root of ``matrix``, dense."""
        return _symmetric_root(self.matrix)

    def residual(self) -> QuadraticResidual | LowRankResidual:
        """The module that serves it, in its cheapest exact form."""
        return root_residual(self.matrix)


def _symmetric_root(matrix: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    values = np.clip(values, 0.0, None)
    return np.asarray((vectors * np.sqrt(values)) @ vectors.T)


def inverse_root(covariance: np.ndarray) -> np.ndarray:
    """The symmetric ``C^{-1/2}``, the eigenvalues of ``C`` raised by RIDGE x their mean first."""
    values, vectors = np.linalg.eigh((covariance + covariance.T) / 2)
    values = np.clip(values, 0.0, None)
    values = values + RIDGE * max(float(values.mean()), 1e-12)
    return np.asarray((vectors / np.sqrt(values)) @ vectors.T)


def _combined(t2_part: np.ndarray, q_part: np.ndarray, flat: np.ndarray) -> np.ndarray:
    """``M = A/mean(T²) + B/mean(Q)`` for ``T² = zᵀAz`` and ``Q = zᵀBz`` on ``flat``."""
    t2_mean = float(np.mean(np.einsum("ij,jk,ik->i", flat, t2_part, flat)))
    q_mean = float(np.mean(np.einsum("ij,jk,ik->i", flat, q_part, flat)))
    matrix = np.zeros_like(t2_part)
    if t2_mean > 0:
        matrix += t2_part / t2_mean
    if q_mean > 0:
        matrix += q_part / q_mean
    return matrix


def _lagged(z: np.ndarray, window: int) -> np.ndarray:
    windows = sliding_windows(z, window)
    return np.asarray(windows.reshape(len(windows), window * z.shape[1]), dtype=np.float64)


def fit_dpca(z: np.ndarray, window: int, *, variance: float = 0.9) -> LinearFit:
    """DPCA on standardised training readings ``z`` (time order)."""
    flat = _lagged(z, window)
    covariance = np.cov(flat, rowvar=False)
    values, vectors = np.linalg.eigh(covariance)
    order = np.argsort(values)[::-1]
    values, vectors = np.clip(values[order], 0.0, None), vectors[:, order]
    k = min(components_keeping(values, variance), len(values) - 1)
    floor = RIDGE * max(float(values.mean()), 1e-12)
    kept = vectors[:, :k]
    t2_part = (kept / (values[:k] + floor)) @ kept.T
    q_part = np.eye(len(values)) - kept @ kept.T
    matrix = _combined(t2_part, q_part, flat)
    return LinearFit(
        matrix=matrix,
        n_components=k,
        details={
            "explained_variance": float(values[:k].sum() / max(values.sum(), 1e-300)),
            "windows": len(flat),
        },
    )


def fit_cva(z: np.ndarray, window: int, *, states: int | None = None) -> LinearFit:
    """CVA on standardised training readings ``z`` (time order), past and future horizons
    both ``window``. ``states`` None: the canonical correlations above 0.5... see
    :func:`default_states`."""
    n_inputs = window * z.shape[1]
    lagged = _lagged(z, window)
    if len(lagged) <= window + 1:
        raise ValueError(f"{len(z)} readings are too few for CVA with window {window}")
    past = lagged[:-window]
    future = lagged[window:]
    past = past - past.mean(axis=0)
    future = future - future.mean(axis=0)
    n = len(past) - 1
    whiten_past = inverse_root(past.T @ past / n)
    whiten_future = inverse_root(future.T @ future / n)
    hankel = whiten_future @ (future.T @ past / n) @ whiten_past
    _, correlations, vt = np.linalg.svd(hankel)
    r = default_states(correlations) if states is None else states
    r = max(1, min(r, n_inputs - 1))
    basis = vt[:r].T  # whitened past -> states
    t2_part = whiten_past @ basis @ basis.T @ whiten_past
    residual = np.eye(n_inputs) - basis @ basis.T
    q_part = whiten_past @ residual @ whiten_past
    matrix = _combined(t2_part, q_part, lagged)
    return LinearFit(
        matrix=matrix,
        n_components=r,
        details={"largest_correlation": float(correlations[0]), "windows": len(past)},
    )


def default_states(correlations: np.ndarray) -> int:
    """States kept by CVA: the canonical correlations of at least 0.5, i.e. the directions
    of the past that explain at least a quarter of a future direction's variance."""
    return max(1, int(np.sum(correlations >= 0.5)))
