"""Writing a trained model as an artifact the service loads (see service/scoring/artifact.py).

TorchScript (``model.pt``) is the primary format the service loads; a ``torch.export``
program (``model.pt2``) holds the same computation for when TorchScript is gone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from models.network import ExportableScorer, ScoringModule
from models.train_config import LINEAR_FAMILIES
from service.scoring.artifact import torchscript_deprecation_silenced
from service.scoring.artifact_writer import write_artifact
from service.scoring.manifest import Manifest

if TYPE_CHECKING:
    from models.train import TrainResult

REFERENCE_SIZE = 1000
"""Calibration errors kept as the drift-test reference: plenty for a two-sample test, and
small enough to keep the artifact small."""


def script_module(module: ScoringModule) -> torch.jit.ScriptModule:
    with torchscript_deprecation_silenced():
        scripted: torch.jit.ScriptModule = torch.jit.script(module.eval())
    return scripted


def export_program(module: ScoringModule) -> torch.export.ExportedProgram:
    """A ``torch.export`` program returning (errors, reconstruction), any batch size >= 1."""
    example = module.mean.reshape(1, 1, -1).repeat(2, module.window, 1)
    batch = torch.export.Dim("batch", min=1)
    return torch.export.export(
        ExportableScorer(module).eval(), (example,), dynamic_shapes={"x": {0: batch}}
    )


def reference_sample(calibration_errors: np.ndarray, size: int = REFERENCE_SIZE) -> np.ndarray:
    """Evenly spaced rows (a deterministic subsample spanning the whole calibration period)."""
    if len(calibration_errors) <= size:
        return np.asarray(calibration_errors, dtype=np.float32)
    rows = np.linspace(0, len(calibration_errors) - 1, size).round().astype(np.int64)
    return np.asarray(calibration_errors[rows], dtype=np.float32)


def export_artifact(
    result: TrainResult,
    out_dir: Path | str,
    *,
    name: str,
    version: str,
    training_data_sha256: str,
    training_data: dict[str, Any] | None = None,
    include_export: bool = True,
) -> Manifest:
    """Write ``out_dir`` (the ``<name>/<version>`` folder itself) and return its manifest.

    ``training_data`` describes where the data came from (files, shapes) for the manifest.
    """
    module = result.module.eval()
    threshold = result.threshold
    training = {
        **_jsonable(result.config.applied()),
        "splits": {key: list(span) for key, span in result.splits.items()},
        "data": training_data or {},
    }
    metrics = _jsonable(result.metrics)
    if result.config.family not in LINEAR_FAMILIES:  # fitted in closed form: no epochs
        metrics["history"] = [
            {"epoch": r.epoch, "train_loss": r.train_loss, "val_loss": r.val_loss}
            for r in result.history
        ]
    manifest_fields: dict[str, Any] = {
        "golden": golden_sample(module, result.golden_inputs),
        "name": name,
        "version": version,
        "sensors": list(result.sensors),
        "window": result.window,
        "scaler": {
            "mean": [float(v) for v in result.scaler_mean],
            "scale": [float(v) for v in result.scaler_scale],
            "constant_sensors": list(result.constant_sensors),
        },
        "threshold": {
            "value": threshold.value,
            "quantile": threshold.quantile,
            "n_calibration": threshold.n_calibration,
            "source": threshold.source,
            "false_alarm_rate_ci": threshold.false_alarm_rate_ci,
        },
        "smoothing": result.smoothing.model_dump(),
        "training_data_sha256": training_data_sha256,
        "training": training,
        "metrics": metrics,
    }
    if result.glitch_limits is not None:  # absent otherwise: older services still load it
        manifest_fields["glitch_limits"] = [float(v) for v in result.glitch_limits]
    return write_artifact(
        Path(out_dir),
        scripted=script_module(module),
        reference_errors=reference_sample(result.calibration_errors),
        manifest_fields=manifest_fields,
        exported=export_program(module) if include_export else None,
    )


def golden_sample(module: ScoringModule, inputs: np.ndarray | None) -> dict[str, Any] | None:
    """The golden sample the service re-scores at load (None without inputs)."""
    if inputs is None or len(inputs) == 0:
        return None
    with torch.inference_mode():
        errors = module(torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32)))
    return {
        "inputs": np.asarray(inputs, dtype=np.float64).tolist(),
        "errors": errors.numpy().astype(np.float64).tolist(),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
