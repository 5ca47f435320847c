"""Runs a loaded TorchScript artifact on a batch of windows: once per request, no autograd."""

from __future__ import annotations

import numpy as np
import torch

from service.errors import ModelFailure
from service.scoring.artifact import Artifact


class ScoringEngine:
    """Per-sensor squared errors and reconstructions for ``(batch, window, n_sensors)`` input."""

    __slots__ = ("_score", "n_sensors", "window")

    def __init__(self, artifact: Artifact) -> None:
        # load_artifact already ran the module under inference_mode (never with grad first).
        self._score = artifact.module.score
        self.n_sensors = artifact.manifest.n_sensors
        self.window = artifact.manifest.window

    def score(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``windows``: C-contiguous float32; returns two float32 ``(batch, n_sensors)`` arrays."""
        if not windows.flags.writeable:  # torch warns on read-only buffers
            windows = windows.copy()
        try:
            with torch.inference_mode():
                squared, reconstruction = self._score(torch.from_numpy(windows))
        except Exception as exc:  # a TorchScript runtime error on valid input is a model bug
            raise ModelFailure(f"model raised {type(exc).__name__}: {exc}") from exc
        return squared.numpy(), reconstruction.numpy()
