"""Runs a loaded TorchScript artifact on a batch of windows: once per request, no autograd."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from service.errors import ModelFailure
from service.scoring.artifact import Artifact

CHUNK_ROWS = 2048  # rows per model call on large batches


class ScoringEngine:
    """Per-sensor squared errors and reconstructions for ``(batch, window, n_sensors)`` input."""

    __slots__ = ("_errors", "_score", "n_sensors", "window")

    def __init__(self, artifact: Artifact) -> None:
        # load_artifact already ran the module under inference_mode (never with grad first).
        self._score = artifact.module.score
        self._errors = _errors_only(artifact)
        self.n_sensors = artifact.manifest.n_sensors
        self.window = artifact.manifest.window

    def score(
        self, windows: np.ndarray, *, reconstruct: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """``windows``: C-contiguous float32; returns two float32 ``(batch, n_sensors)`` arrays:
        the squared errors and the reconstructions (empty, ``(0, n_sensors)``, when
        ``reconstruct`` is false and the model's ``forward`` can skip them).

        Large batches run in slices of ``CHUNK_ROWS``: each layer's output (~0.4 MB) then
        stays in the core's cache for the next layer, and no fresh multi-MB buffers are
        page-faulted per call, which matters more when other work contends for the
        cache. Rows are independent, so the results are the same.
        """
        if not windows.flags.writeable:  # torch warns on read-only buffers
            windows = windows.copy()
        batch = len(windows)
        errors_only = self._errors if not reconstruct else None
        try:
            with torch.inference_mode():
                if batch <= CHUNK_ROWS:
                    tensor = torch.from_numpy(windows)
                    if errors_only is not None:
                        return errors_only(tensor).numpy(), self._no_reconstruction()
                    squared, reconstruction = self._score(tensor)
                    return squared.numpy(), reconstruction.numpy()
                squared_out = np.empty((batch, self.n_sensors), dtype=np.float32)
                if errors_only is not None:
                    for start in range(0, batch, CHUNK_ROWS):
                        stop = start + CHUNK_ROWS
                        chunk = torch.from_numpy(windows[start:stop])
                        squared_out[start:stop] = errors_only(chunk).numpy()
                    return squared_out, self._no_reconstruction()
                reconstruction_out = np.empty((batch, self.n_sensors), dtype=np.float32)
                for start in range(0, batch, CHUNK_ROWS):
                    stop = start + CHUNK_ROWS
                    squared, reconstruction = self._score(torch.from_numpy(windows[start:stop]))
                    squared_out[start:stop] = squared.numpy()
                    reconstruction_out[start:stop] = reconstruction.numpy()
                return squared_out, reconstruction_out
        except Exception as exc:  # a TorchScript runtime error on valid input is a model bug
            raise ModelFailure(f"model raised {type(exc).__name__}: {exc}") from exc

    def _no_reconstruction(self) -> np.ndarray:
        return np.empty((0, self.n_sensors), dtype=np.float32)


def _errors_only(artifact: Artifact) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The module's ``forward`` (the errors without the reconstruction, a few % less work)
    when it gives exactly the errors ``score`` gives on a probe; else None, and ``score``
    serves every call. Runs it under inference_mode first, as the warm-up requires."""
    manifest = artifact.manifest
    mean = torch.tensor(manifest.scaler.mean, dtype=torch.float32)
    scale = torch.tensor(manifest.scaler.scale, dtype=torch.float32)
    probe = torch.stack([mean, mean + scale, mean - 2 * scale]).unsqueeze(1)
    probe = probe.repeat(1, manifest.window, 1)
    module = artifact.module
    try:
        with torch.inference_mode():
            for _ in range(2):  # TorchScript profiles the first runs, then optimises
                errors = module.forward(probe)
            expected, _ = module.score(probe)
    except Exception:  # no usable forward: score() serves
        return None
    if not isinstance(errors, torch.Tensor) or not torch.equal(errors, expected):
        return None
    forward: Callable[[torch.Tensor], torch.Tensor] = module.forward
    return forward
