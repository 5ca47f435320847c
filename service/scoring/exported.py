"""Loading an artifact's ``model.pt2`` (the ``torch.export`` program) outside the service,
with the checks ``model.pt`` carries inside itself.

A ``torch.export`` program fixes its input's rank, window and sensors when it is exported,
and refuses anything else with only ``Guard failed: x.size()[1] == 1``. This loader says what
was expected instead, ``(batch, window, sensors)`` with the model's numbers, and loads the
program only after the manifest's checksums and golden sample vouch for it::

    from service.scoring.exported import load_exported
    scorer = load_exported("models/synthetic-plant/2")  # 20 readings of 50 sensors a window
    windows = np.lib.stride_tricks.sliding_window_view(readings, (20, 50))[:, 0]
    errors, reconstruction = scorer(torch.tensor(windows))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from service.scoring.artifact import (
    GOLDEN_ATOL,
    GOLDEN_RTOL,
    ArtifactError,
    read_manifest,
    verify_files,
)
from service.scoring.manifest import EXPORT_FILE, Manifest


def shape_problem(shape: tuple[int, ...], window: int, n_sensors: int) -> str | None:
    """Why a tensor of ``shape`` is not a batch of this model's windows (None if it is)."""
    if len(shape) == 3 and shape[0] >= 1 and shape[1:] == (window, n_sensors):
        return None
    hint = ""
    if len(shape) == 2 and shape[-1] == n_sensors:
        hint = f"; a batch of single readings is x.reshape(-1, {window}, {n_sensors})"
        if window > 1:
            hint = f"; each input is the stream's last {window} readings, in time order"
    return (
        f"expected raw readings shaped (batch, window, sensors) = (batch, {window}, "
        f"{n_sensors}), got {tuple(shape)}{hint}"
    )


@dataclass(frozen=True)
class ExportedScorer:
    """``model.pt2``'s program: ``scorer(x)`` returns ``(errors, reconstruction)`` for raw
    float32 readings ``x`` shaped ``(batch, window, sensors)``, and raises ValueError naming
    that shape for any other."""

    manifest: Manifest
    module: torch.nn.Module

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        problem = shape_problem(tuple(x.shape), self.manifest.window, self.manifest.n_sensors)
        if problem is not None:
            raise ValueError(problem)
        errors, reconstruction = self.module(x)
        return errors, reconstruction


def load_exported(artifact_dir: Path | str) -> ExportedScorer:
    path = Path(artifact_dir)
    manifest = read_manifest(path)
    if EXPORT_FILE not in manifest.files:
        raise ArtifactError(path, f"the manifest lists no {EXPORT_FILE}")
    verify_files(path, manifest)
    try:
        module = torch.export.load(str(path / EXPORT_FILE)).module()
    except Exception as exc:  # torch raises a variety of errors on bad archives
        raise ArtifactError(path, f"{EXPORT_FILE} is not a loadable program: {exc}") from exc
    scorer = ExportedScorer(manifest=manifest, module=module)
    if manifest.golden is not None:
        inputs = torch.tensor(manifest.golden.inputs, dtype=torch.float32)
        with torch.inference_mode():
            actual = scorer(inputs)[0].numpy().astype(np.float64)
        expected = np.asarray(manifest.golden.errors, dtype=np.float64)
        if not np.allclose(actual, expected, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL):
            raise ArtifactError(
                path,
                f"{EXPORT_FILE} does not give the errors recorded for the golden sample: "
                "it is not the model the manifest describes",
            )
    return scorer
