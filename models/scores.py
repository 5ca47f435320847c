"""The one way the evaluation code turns readings into a model's per-reading scores.

The benchmarks and ``models evaluate`` score through :func:`detector_scores` only, so when a
model declares its score smoothing the figures follow it by changing this module alone.
Today the score is the raw mean of the per-sensor squared errors, the figure the threshold
is calibrated on. With a window of ``w`` readings the first ``w - 1`` readings of a run
have no score: every array here starts at reading ``w - 1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from models.data import sliding_windows
from models.train import TrainResult, score_readings

if TYPE_CHECKING:
    from service.scoring.artifact import Artifact


def per_sensor_errors(
    model: TrainResult | Artifact, values: np.ndarray, *, batch_size: int = 4096
) -> np.ndarray:
    """Per-sensor squared errors (float64) for readings ``window-1 .. n-1``: a freshly
    trained model scores with its eager module, an artifact with its TorchScript module
    (the code path the service runs)."""
    if isinstance(model, TrainResult):
        return score_readings(model.module, values, model.window).astype(np.float64)
    from service.scoring.artifact import torchscript_deprecation_silenced

    window = model.manifest.window
    windows = sliding_windows(np.asarray(values, dtype=np.float32), window)
    out = np.empty((len(windows), model.manifest.n_sensors), dtype=np.float64)
    with torchscript_deprecation_silenced(), torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            batch = torch.from_numpy(np.array(windows[start : start + batch_size], copy=True))
            errors, _ = model.module.score(batch)
            out[start : start + len(batch)] = errors.numpy()
    return out


def scores_from_errors(model: TrainResult | Artifact, errors: np.ndarray) -> np.ndarray:
    """The model's score per reading from its per-sensor errors (one run, in time order)."""
    del model  # the hook for a model's declared smoothing: today every model scores raw
    scores: np.ndarray = np.asarray(errors, dtype=np.float64).mean(axis=1)
    return scores


def detector_scores(model: TrainResult | Artifact, values: np.ndarray) -> np.ndarray:
    """The model's score per reading of one run (time order), comparable to its threshold."""
    return scores_from_errors(model, per_sensor_errors(model, values))
