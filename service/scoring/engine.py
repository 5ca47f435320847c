"""Runs a loaded TorchScript artifact on a batch of windows: once per request, no autograd."""

from __future__ import annotations

import numpy as np
import torch

from service.errors import ModelFailure
from service.scoring.artifact import Artifact

CHUNK_ROWS = 2048  # rows per model call on large batches


class ScoringEngine:
    """Per-sensor squared errors and reconstructions for ``(batch, window, n_sensors)`` input."""

    __slots__ = ("_score", "n_sensors", "window")

    def __init__(self, artifact: Artifact) -> None:
        # load_artifact already ran the module under inference_mode (never with grad first).
        self._score = artifact.module.score
        self.n_sensors = artifact.manifest.n_sensors
        self.window = artifact.manifest.window

    def score(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``windows``: C-contiguous float32; returns two float32 ``(batch, n_sensors)`` arrays.

        Large batches run in slices of ``CHUNK_ROWS``: each layer's output (~0.4 MB) then
        stays in the core's cache for the next layer, and no fresh multi-MB buffers are
        page-faulted per call; measured 3.4 -> 3.2 ms on 10,000 readings, more when other
        work contends for the cache. Rows are independent, so the results are the same.
        """
        if not windows.flags.writeable:  # torch warns on read-only buffers
            windows = windows.copy()
        batch = len(windows)
        try:
            with torch.inference_mode():
                if batch <= CHUNK_ROWS:
                    squared, reconstruction = self._score(torch.from_numpy(windows))
                    return squared.numpy(), reconstruction.numpy()
                squared_out = np.empty((batch, self.n_sensors), dtype=np.float32)
                reconstruction_out = np.empty((batch, self.n_sensors), dtype=np.float32)
                for start in range(0, batch, CHUNK_ROWS):
                    stop = start + CHUNK_ROWS
                    squared, reconstruction = self._score(torch.from_numpy(windows[start:stop]))
                    squared_out[start:stop] = squared.numpy()
                    reconstruction_out[start:stop] = reconstruction.numpy()
        except Exception as exc:  # a TorchScript runtime error on valid input is a model bug
            raise ModelFailure(f"model raised {type(exc).__name__}: {exc}") from exc
        return squared_out, reconstruction_out
