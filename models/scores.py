"""The one way the evaluation code turns readings into a model's per-reading scores.

The benchmarks and ``models evaluate`` score through :func:`detector_scores` only: the mean
of the per-sensor squared errors, smoothed as the model declares (the figure its threshold is
set on, and what the service flags). A model that declares a smoothing has its alerts
debounced without smoothing them again (:func:`alert_rule_for`). With a window of ``w``
readings the first ``w - 1`` readings of a run have no score: every array here starts at
reading ``w - 1``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from models.events import AlertRule
from models.operating_point import smooth
from models.train import TrainResult
from models.windows import model_inputs, score_readings
from service.scoring.decision import reading_errors

if TYPE_CHECKING:
    from service.scoring.artifact import Artifact
    from service.scoring.manifest import ScoreSmoothing


def per_sensor_errors(
    model: TrainResult | Artifact, values: np.ndarray, *, batch_size: int = 4096
) -> np.ndarray:
    """Per-sensor squared errors (float64) for readings ``window-1 .. n-1``: a freshly
    trained model scores with its eager module, an artifact with its TorchScript module
    (the code path the service runs)."""
    limits = glitch_limits_of(model)
    if isinstance(model, TrainResult):
        return score_readings(model.module, values, model.window, limits=limits).astype(np.float64)
    from service.scoring.artifact import torchscript_deprecation_silenced

    windows = model_inputs(np.asarray(values, dtype=np.float32), model_window(model), limits)
    out = np.empty((len(windows), model.manifest.n_sensors), dtype=np.float64)
    with torchscript_deprecation_silenced(), torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            batch = torch.from_numpy(np.array(windows[start : start + batch_size], copy=True))
            errors, _ = model.module.score(batch)
            out[start : start + len(batch)] = errors.numpy()
    return out


def glitch_limits_of(model: TrainResult | Artifact) -> np.ndarray | None:
    """The glitch guard's per-sensor jump limits (raw units), if the model has them."""
    if isinstance(model, TrainResult):
        return model.glitch_limits
    limits = model.manifest.glitch_limits
    return None if limits is None else np.asarray(limits, dtype=np.float64)


def model_window(model: TrainResult | Artifact) -> int:
    """Readings per input of the model."""
    return model.window if isinstance(model, TrainResult) else model.manifest.window


def varying_scales(model: TrainResult | Artifact) -> dict[int, float]:
    """Each sensor that varied in training (by index) and its training standard deviation; a
    constant sensor has scale 1, which is no unit of its variation."""
    if isinstance(model, TrainResult):
        sensors, scale, constant = model.sensors, model.scaler_scale, model.constant_sensors
    else:
        scaler = model.manifest.scaler
        sensors, scale = model.manifest.sensors, np.asarray(scaler.scale)
        constant = scaler.constant_sensors
    fixed = set(constant)
    return {i: float(scale[i]) for i, name in enumerate(sensors) if name not in fixed}


def declared_smoothing(model: TrainResult | Artifact) -> ScoreSmoothing | None:
    """The smoothing the model's threshold was set for; None for an artifact written before
    smoothing was declared (the service smooths those as its settings say)."""
    if isinstance(model, TrainResult):
        return model.smoothing
    return model.manifest.smoothing


def scores_from_errors(model: TrainResult | Artifact, errors: np.ndarray) -> np.ndarray:
    """The model's score per reading from its per-sensor errors (one run, in time order)."""
    scores = reading_errors(np.asarray(errors))
    how = declared_smoothing(model)
    return scores if how is None else smooth(scores, how)


def alert_rule_for(model: TrainResult | Artifact) -> AlertRule:
    """The service's default alert rule, without its smoothing when the model's scores are
    already smoothed as it declares."""
    return AlertRule() if declared_smoothing(model) is None else AlertRule(smoothing="none")


def detector_scores(model: TrainResult | Artifact, values: np.ndarray) -> np.ndarray:
    """The model's score per reading of one run (time order), comparable to its threshold."""
    return scores_from_errors(model, per_sensor_errors(model, values))
