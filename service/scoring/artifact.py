"""The model artifact contract, shared by the training CLI (writer) and the service (reader).

An artifact is a folder ``<models_dir>/<name>/<version>/`` holding:

- ``model.pt``: a TorchScript module, carrying ``contract.json`` (sensors, window, scaler,
  threshold) so a manifest edited or copied from another model is refused. ``forward(x)``
  takes raw readings shaped
  ``(batch, window, n_sensors)`` (float32; scaling is baked in) and returns per-sensor
  squared errors in standardised units, shaped ``(batch, n_sensors)``. The exported
  method ``score(x)`` returns ``(squared_errors, reconstruction)`` where
  ``reconstruction`` is the model's estimate of the *latest* reading in raw units, so the
  service runs the model once per request and still reports reconstructed values.
- ``model.pt2`` (optional): the same computation as a ``torch.export`` program whose
  ``forward`` returns ``(squared_errors, reconstruction)``; it outlives TorchScript.
- ``reference_errors.npy``: float32 ``(n_reference, n_sensors)`` per-sensor squared
  errors of calibration readings, the reference sample for drift tests.
- ``manifest.json``: :class:`Manifest`, with the SHA-256 of every file above.

A reading's reconstruction error is the mean of its per-sensor squared errors; the
threshold is expressed in the same unit.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from service.errors import validation_problems
from service.scoring.manifest import (
    CONTRACT_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    REFERENCE_FILE,
    TORCHSCRIPT_FILE,
    GoldenSample,
    Manifest,
)


class ArtifactError(Exception):
    """A model artifact is missing, corrupt or inconsistent; the message says which and why."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"model artifact {self.path}: {reason}")


GOLDEN_RTOL = 1e-4
GOLDEN_ATOL = 1e-6


@dataclass(frozen=True)
class Artifact:
    """A verified, loaded artifact: the manifest, the scripted module and the reference errors."""

    path: Path
    manifest: Manifest
    module: torch.jit.ScriptModule
    reference_errors: np.ndarray


@contextmanager
def torchscript_deprecation_silenced() -> Iterator[None]:
    """TorchScript is deprecated in torch 2.13 but is our primary format: hide only that warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=DeprecationWarning)
        yield


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_array(array: np.ndarray) -> str:
    """Fingerprint of data (shape, dtype and bytes), recorded so a model can be traced to it."""
    contiguous = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{contiguous.shape}|{contiguous.dtype.str}|".encode())
    digest.update(contiguous.tobytes())
    return digest.hexdigest()


CORE_CONTRACT = ("sensors", "window", "scaler_mean", "scaler_scale", "threshold", "quantile")
"""Keys every contract holds; artifacts written since also hold the threshold's backing and
the training data's fingerprint, checked when present."""


def model_contract(fields: dict[str, Any]) -> dict[str, Any]:
    """What the weights were trained for, from manifest fields (a dict or a dumped Manifest):
    the sensors in order, the window, the scaler, the threshold and what backs it, the
    training data's fingerprint, the smoothing and the glitch guard's limits."""
    scaler, threshold = fields["scaler"], fields["threshold"]
    limits = fields.get("glitch_limits")
    smoothing = fields.get("smoothing")
    if isinstance(smoothing, dict):
        # An unset field is absent from the contract an artifact was written with, as it is
        # from contracts written before the field existed.
        smoothing = {key: value for key, value in smoothing.items() if value is not None}
    return {
        "sensors": [str(name) for name in fields["sensors"]],
        "window": int(fields["window"]),
        "scaler_mean": [float(v) for v in scaler["mean"]],
        "scaler_scale": [float(v) for v in scaler["scale"]],
        "threshold": float(threshold["value"]),
        "quantile": float(threshold["quantile"]),
        "threshold_n_calibration": int(threshold["n_calibration"]),
        "threshold_source": str(threshold["source"]),
        "threshold_false_alarm_rate_ci": [float(v) for v in threshold["false_alarm_rate_ci"]],
        "training_data_sha256": str(fields["training_data_sha256"]),
        "smoothing": smoothing,
        "glitch_limits": None if limits is None else [float(v) for v in limits],
    }


def _check_contract(path: Path, manifest: Manifest, stored: str | bytes) -> None:
    """An artifact written before the contract existed has none; any other must match on
    the core keys and on every other key it holds (older contracts hold fewer)."""
    if not stored:
        return
    try:
        contract = json.loads(stored)
        expected = {
            **model_contract(manifest.model_dump()),
            "companion_files": {
                name: entry.sha256
                for name, entry in manifest.files.items()
                if name != TORCHSCRIPT_FILE
            },
        }
        differing = sorted(
            key
            for key in expected
            if (key in CORE_CONTRACT or key in contract) and contract.get(key) != expected[key]
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise ArtifactError(
            path, f"{TORCHSCRIPT_FILE} holds an unreadable {CONTRACT_FILE}: {exc}"
        ) from exc
    if differing:
        raise ArtifactError(
            path,
            f"{MANIFEST_FILE} does not describe the model in {TORCHSCRIPT_FILE}: "
            f"{', '.join(differing)} differ from what the model was trained with "
            "(edited, or copied from another model)",
        )


def read_manifest(artifact_dir: Path) -> Manifest:
    path = artifact_dir / MANIFEST_FILE
    if not path.is_file():
        raise ArtifactError(artifact_dir, f"no {MANIFEST_FILE}")
    try:
        raw = json.loads(path.read_text())
    except RecursionError:
        raise ArtifactError(
            artifact_dir, f"{MANIFEST_FILE} is not a manifest: its JSON is nested too deeply"
        ) from None
    except OSError as exc:
        raise ArtifactError(
            artifact_dir, f"{MANIFEST_FILE} cannot be read: {exc.strerror or exc}"
        ) from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, 4,300+ digits
        raise ArtifactError(artifact_dir, f"{MANIFEST_FILE} is not valid JSON: {exc}") from exc
    if isinstance(raw, dict) and raw.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            artifact_dir,
            f"manifest format_version {raw.get('format_version')!r} is not supported "
            f"(this build reads {FORMAT_VERSION})",
        )
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        problems = validation_problems(exc, whole="manifest")
        raise ArtifactError(
            artifact_dir, f"{MANIFEST_FILE} does not match the schema: {problems}"
        ) from None


def verify_files(artifact_dir: Path, manifest: Manifest) -> None:
    for name, expected in manifest.files.items():
        path = artifact_dir / name
        if not path.is_file():
            raise ArtifactError(artifact_dir, f"{name} is listed in the manifest but missing")
        try:
            actual = sha256_file(path)
        except OSError as exc:
            raise ArtifactError(artifact_dir, f"{name} cannot be read: {exc}") from exc
        if actual != expected.sha256:
            raise ArtifactError(
                artifact_dir,
                f"{name} checksum mismatch (manifest {expected.sha256[:12]}…, "
                f"file {actual[:12]}…): the file was modified or corrupted",
            )


def load_artifact(artifact_dir: Path | str) -> Artifact:
    """Verify checksums and schema, load the module and prove it answers in the declared shape."""
    path = Path(artifact_dir)
    manifest = read_manifest(path)
    verify_files(path, manifest)
    reference = _load_reference(path, manifest)
    extra_files: dict[str, str | bytes] = {CONTRACT_FILE: ""}  # torch fills in the bytes
    try:
        with torchscript_deprecation_silenced():
            module = torch.jit.load(  # type: ignore[no-untyped-call]
                str(path / TORCHSCRIPT_FILE), map_location="cpu", _extra_files=extra_files
            )
    except Exception as exc:  # torch raises a variety of RuntimeErrors on bad archives
        raise ArtifactError(
            path, f"{TORCHSCRIPT_FILE} is not a loadable TorchScript module: {exc}"
        ) from exc
    _check_contract(path, manifest, extra_files[CONTRACT_FILE])
    module.eval()
    _check_module_contract(path, manifest, module)
    return Artifact(path=path, manifest=manifest, module=module, reference_errors=reference)


def _load_reference(path: Path, manifest: Manifest) -> np.ndarray:
    try:
        reference = np.load(path / REFERENCE_FILE, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ArtifactError(path, f"{REFERENCE_FILE} is not a readable .npy array: {exc}") from exc
    if (
        not isinstance(reference, np.ndarray)
        or reference.dtype.kind != "f"
        or reference.ndim != 2
        or reference.shape[1] != manifest.n_sensors
        or len(reference) == 0
    ):
        raise ArtifactError(
            path,
            f"{REFERENCE_FILE} holds {getattr(reference, 'dtype', type(reference).__name__)} of "
            f"shape {getattr(reference, 'shape', None)}, expected floats (n, {manifest.n_sensors})",
        )
    if not np.isfinite(reference).all() or (reference < 0).any():
        raise ArtifactError(path, f"{REFERENCE_FILE} must hold finite, non-negative squared errors")
    return reference


def _check_module_contract(path: Path, manifest: Manifest, module: torch.jit.ScriptModule) -> None:
    """Warm up under inference_mode (a module first run with grad and later under
    inference_mode fails) and check the outputs match the manifest."""
    probe = torch.tensor(manifest.scaler.mean, dtype=torch.float32).repeat(2, manifest.window, 1)
    try:
        with torch.inference_mode():
            errors, reconstruction = module.score(probe)
    except Exception as exc:
        raise ArtifactError(
            path,
            f"model does not accept input (batch, {manifest.window}, {manifest.n_sensors}) "
            f"or lacks score(): {exc}",
        ) from exc
    expected = (2, manifest.n_sensors)
    if tuple(errors.shape) != expected or tuple(reconstruction.shape) != expected:
        raise ArtifactError(
            path,
            f"model outputs {tuple(errors.shape)} and {tuple(reconstruction.shape)}, "
            f"expected {expected} for {manifest.n_sensors} sensors in the manifest",
        )
    if not bool(torch.isfinite(errors).all()):
        raise ArtifactError(path, "model returns non-finite errors on the training mean")
    if manifest.golden is not None:
        _check_golden(path, manifest.golden, module)


def _check_golden(path: Path, golden: GoldenSample, module: torch.jit.ScriptModule) -> None:
    inputs = torch.tensor(golden.inputs, dtype=torch.float32)
    expected = np.asarray(golden.errors, dtype=np.float64)
    try:
        with torch.inference_mode():
            actual = module(inputs).numpy().astype(np.float64)
    except Exception as exc:
        raise ArtifactError(path, f"model cannot score its golden sample: {exc}") from exc
    if actual.shape != expected.shape or not np.allclose(
        actual, expected, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL
    ):
        worst = float(np.max(np.abs(actual - expected))) if actual.shape == expected.shape else None
        raise ArtifactError(
            path,
            f"{TORCHSCRIPT_FILE} does not give the errors recorded for its golden sample "
            f"(largest difference {worst}): the file is not the model the manifest describes",
        )


def discover_artifacts(models_dir: Path | str) -> list[Path]:
    """Every ``<name>/<version>/`` folder holding a manifest, in a stable order."""
    root = Path(models_dir)
    return sorted(
        p.parent
        for p in root.glob(f"*/*/{MANIFEST_FILE}")
        if not (p.parent.name.startswith(".") or p.parent.parent.name.startswith("."))
    )
