"""Readings for the load tests, generated from a model manifest's sensors and scaler.

Readings sit at the training mean plus small Gaussian noise (in units of each sensor's
training standard deviation), which a trained autoencoder reconstructs well, with a small
share of single-sensor spikes so the anomaly path (flags, top sensors, alert state) is
exercised as in production, where most readings are normal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from service.scoring.artifact import discover_artifacts, read_manifest
from service.scoring.manifest import Manifest

NOISE_STD = 0.05
SPIKE_FRACTION = 0.01
SPIKE_STD = 6.0


@dataclass(frozen=True)
class SensorSpace:
    """What a model expects: sensor names in order, their scale, and the input window."""

    model: str
    version: str
    sensors: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    window: int

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> SensorSpace:
        return cls(
            model=manifest.name,
            version=manifest.version,
            sensors=tuple(manifest.sensors),
            mean=np.asarray(manifest.scaler.mean, dtype=np.float64),
            scale=np.asarray(manifest.scaler.scale, dtype=np.float64),
            window=manifest.window,
        )

    @property
    def n_sensors(self) -> int:
        return len(self.sensors)

    def readings(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` readings, float32 ``(n, n_sensors)``, in the manifest's sensor order."""
        noise = rng.normal(0.0, NOISE_STD, size=(n, self.n_sensors))
        spiked = rng.random(n) < SPIKE_FRACTION
        columns = rng.integers(0, self.n_sensors, size=n)
        noise[spiked, columns[spiked]] += SPIKE_STD * rng.choice([-1.0, 1.0], size=spiked.sum())
        readings: np.ndarray = (self.mean + noise * self.scale).astype(np.float32)
        return readings


def find_manifest(models_dir: Path, model: str | None = None) -> Manifest:
    """The manifest of ``model`` (its highest version), or of the only model in ``models_dir``."""
    manifests = [read_manifest(path) for path in discover_artifacts(models_dir)]
    if model is not None:
        manifests = [m for m in manifests if m.name == model]
    names = sorted({m.name for m in manifests})
    if not names:
        wanted = f"model {model!r}" if model else "any model"
        raise FileNotFoundError(f"no artifact of {wanted} under {models_dir}")
    if len(names) > 1:
        raise ValueError(f"{models_dir} holds several models {names}: name one with --model")
    return max(manifests, key=lambda m: _version_key(m.version))


def _version_key(version: str) -> tuple[int, int, str]:
    """The service's order: numeric versions numerically, above non-numeric ones."""
    return (1, int(version), "") if version.isdigit() else (0, 0, version)
