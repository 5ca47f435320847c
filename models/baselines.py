"""The PCA baseline every autoencoder figure is shown beside: Hotelling's T² and SPE (Q).

Classical process monitoring: standardise with training statistics, keep the principal
components that explain a fixed share of the training variance, then score a reading by its
distance inside the model plane (T², scaled by each component's variance) and by its
distance from it (SPE, the squared residual, the linear analogue of a reconstruction error).
Limits are empirical quantiles of calibration statistics, the same rule the autoencoder's
threshold uses, so the comparison differs only in the model.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

DEFAULT_VARIANCE_TO_KEEP = 0.90
_MIN_EIGENVALUE = 1e-10


def components_keeping(variances: np.ndarray, share: float) -> int:
    """The fewest leading components (variances in descending order) whose variance adds up
    to at least ``share`` of the total."""
    cumulative = np.cumsum(variances) / np.sum(variances)
    return int(np.searchsorted(cumulative, share - 1e-12) + 1)


@dataclass(frozen=True)
class PCABaseline:
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # (n_sensors, n_components), orthonormal columns
    eigenvalues: np.ndarray  # (n_components,), training variance along each component
    explained_variance: float
    t2_limit: float | None = None
    spe_limit: float | None = None
    quantile: float | None = None
    n_calibration: int = 0

    @classmethod
    def fit(
        cls,
        train_values: np.ndarray,
        *,
        variance_to_keep: float = DEFAULT_VARIANCE_TO_KEEP,
        n_components: int | None = None,
    ) -> PCABaseline:
        """Fit on normal training readings only. Zero-variance sensors get scale 1 (they then
        contribute their raw deviation, as in the autoencoder's scaler)."""
        x = np.asarray(train_values, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError(f"PCA needs a (n_readings >= 2, n_sensors) array, got {x.shape}")
        if not 0.0 < variance_to_keep <= 1.0:
            raise ValueError(f"variance_to_keep must be in (0, 1], got {variance_to_keep}")
        mean = x.mean(axis=0)
        std = x.std(axis=0, ddof=1)
        scale = np.where(std > 0, std, 1.0)
        z = (x - mean) / scale
        _, singular, vt = np.linalg.svd(z, full_matrices=False)
        eigenvalues = singular**2 / (x.shape[0] - 1)
        usable = int(np.sum(eigenvalues > _MIN_EIGENVALUE))
        if usable == 0:
            raise ValueError("training readings have no variance: PCA has nothing to model")
        if n_components is None:
            n_components = components_keeping(eigenvalues, variance_to_keep)
        k = max(1, min(n_components, usable))
        return cls(
            mean=mean,
            scale=scale,
            components=vt[:k].T.copy(),
            eigenvalues=eigenvalues[:k].copy(),
            explained_variance=float(eigenvalues[:k].sum() / eigenvalues.sum()),
        )

    @property
    def n_components(self) -> int:
        return int(self.components.shape[1])

    def _standardise(self, values: np.ndarray) -> np.ndarray:
        x = np.asarray(values, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mean.size:
            raise ValueError(f"expected (n, {self.mean.size}) readings, got {x.shape}")
        return np.asarray((x - self.mean) / self.scale)

    def t2(self, values: np.ndarray) -> np.ndarray:
        scores = self._standardise(values) @ self.components
        return np.asarray(np.sum(scores**2 / self.eigenvalues, axis=1))

    def spe_contributions(self, values: np.ndarray) -> np.ndarray:
        """Per-sensor squared residuals: which sensors leave the PCA plane."""
        z = self._standardise(values)
        residual = z - (z @ self.components) @ self.components.T
        return np.asarray(residual**2)

    def spe(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(self.spe_contributions(values).sum(axis=1))

    def calibrate(self, calibration_values: np.ndarray, quantile: float) -> PCABaseline:
        """Limits at the ``quantile`` of each statistic on normal calibration readings."""
        if not 0.0 < quantile < 1.0:
            raise ValueError(f"quantile must be in (0, 1), got {quantile}")
        x = np.asarray(calibration_values, dtype=np.float64)
        if x.shape[0] < 1:
            raise ValueError("no calibration readings")
        return replace(
            self,
            t2_limit=float(np.quantile(self.t2(x), quantile)),
            spe_limit=float(np.quantile(self.spe(x), quantile)),
            quantile=quantile,
            n_calibration=int(x.shape[0]),
        )

    def summary(self) -> dict[str, float | int | None]:
        return {
            "n_components": self.n_components,
            "n_sensors": int(self.mean.size),
            "explained_variance": self.explained_variance,
            "t2_limit": self.t2_limit,
            "spe_limit": self.spe_limit,
            "quantile": self.quantile,
            "n_calibration": self.n_calibration,
        }
