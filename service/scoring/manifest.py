"""The manifest of a model artifact (``manifest.json``): its schema, the artifact's file names
and the rule for model names. Written by the training CLI, read by the service; loading and
verifying an artifact against it is service/scoring/artifact.py."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    model_serializer,
    model_validator,
)

FORMAT_VERSION: Literal[1] = 1
MANIFEST_FILE = "manifest.json"
TORCHSCRIPT_FILE = "model.pt"
EXPORT_FILE = "model.pt2"
REFERENCE_FILE = "reference_errors.npy"
CONTRACT_FILE = "contract.json"
"""Stored inside model.pt: the manifest fields the weights were trained for."""

FileFormat = Literal["torchscript", "torch.export", "npy"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ArtifactFile(_Strict):
    """One file of the artifact and the checksum it must match."""

    format: FileFormat
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: int = Field(ge=0)


class Scaler(_Strict):
    """Per-sensor standardisation fitted on the training split only (baked into the model)."""

    mean: list[float]
    scale: list[float]
    constant_sensors: list[str] = Field(
        default_factory=list,
        description="Sensors with zero variance in training; their scale is 1 instead of 0.",
    )


class Threshold(_Strict):
    """The decision threshold on a reading's reconstruction error, and what backs it."""

    value: float = Field(gt=0, allow_inf_nan=False)
    quantile: float = Field(gt=0, lt=1)
    n_calibration: int = Field(ge=1)
    source: str = Field(description="Where the calibration readings came from.")
    false_alarm_rate_ci: tuple[float, float] = Field(
        description="95% Clopper-Pearson interval on the false-alarm rate this threshold "
        "implies, on effective counts: a run of consecutive calibration readings above it counts "
        "as one event (artifacts from before 6 Dec 2026 counted every reading)."
    )


class ScoreSmoothing(_Strict):
    """How a stream's scores are smoothed before they meet the threshold. The threshold is
    the quantile of calibration scores smoothed this way, so its false-alarm rate is the
    rate of what the service flags when it smooths the same way."""

    method: Literal["none", "mean", "median", "ewma"]
    window: int = Field(default=1, ge=1, description="Scores a mean or median covers.")
    alpha: float = Field(default=1.0, gt=0, le=1, description="Weight of the newest score (EWMA).")
    start: float | None = Field(
        default=None,
        ge=0,
        allow_inf_nan=False,
        description="The raw score a new stream's smoothing starts from, as if it had seen "
        "calibration scores before (their mean for an EWMA or mean, their median for a "
        "median), so a stream's first scores are smoothed as much as the threshold assumes. "
        "Absent for 'none' (nothing to start) and in artifacts written before it: a new "
        "stream's smoothing then starts from its first score.",
    )

    @model_serializer(mode="wrap")
    def _unset_start_left_out(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Written without it, a manifest whose smoothing starts nowhere is one an older
        # service (whose schema has no such field) still loads.
        data: dict[str, Any] = handler(self)
        if data.get("start") is None:
            data.pop("start", None)
        return data

    def label(self) -> str:
        if self.method == "ewma":
            return f"ewma:{self.alpha:g}"
        return "none" if self.method == "none" else f"{self.method}:{self.window}"


class GoldenSample(_Strict):
    """A few calibration windows and the per-sensor errors the model gave them at export.
    Loading scores them again: a model file that returns other numbers (zeros, another
    model's) is refused with the reason."""

    inputs: list[list[list[float]]] = Field(
        min_length=1, description="Raw readings, (n, window, n_sensors)."
    )
    errors: list[list[float]] = Field(description="Per-sensor squared errors, (n, n_sensors).")


NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
NAME_MAX_LENGTH = 128
ArtifactName = Annotated[str, Field(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)]
"""Model names and versions: one folder level each, safe in URLs, never hidden or relative."""
_ARTIFACT_NAME: TypeAdapter[str] = TypeAdapter(ArtifactName)


def name_problem(value: str, what: str) -> str | None:
    """Why ``value`` cannot be a model name or version (``what`` says which), or None: the
    manifest's own rule, checked before training rather than at export."""
    try:
        _ARTIFACT_NAME.validate_python(value)
    except ValidationError:
        pass
    else:
        return None
    return (
        f"{what} {value!r} must start with a letter or digit and hold only letters, digits, "
        "'.', '_' and '-' (at most 128): it names a folder under the models directory"
    )


class Manifest(_Strict):
    """Everything the service needs to trust, load and explain a model."""

    format_version: Literal[1] = FORMAT_VERSION
    name: ArtifactName
    version: ArtifactName
    sensors: list[str] = Field(min_length=1)
    window: int = Field(ge=1, description="Readings per model input: a stream's last `window`.")
    scaler: Scaler
    threshold: Threshold
    smoothing: ScoreSmoothing | None = Field(
        default=None,
        description="The score smoothing the threshold was calibrated for; absent in artifacts "
        "written before it was declared, whose scores the service smooths as its settings say.",
    )
    glitch_limits: list[float] | None = Field(
        default=None,
        description="The glitch guard's jump limits, one per sensor in its raw units "
        "(service/scoring/glitches.py); absent: the model sees every reading as it came.",
    )
    golden: GoldenSample | None = Field(
        default=None,
        description="Absent in artifacts written before it: those are checked on shapes only.",
    )
    files: dict[str, ArtifactFile]
    training_data_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    training: dict[str, Any] = Field(description="Settings the model was trained with.")
    metrics: dict[str, Any] = Field(description="Training, validation and calibration figures.")
    torch_version: str
    created_at: datetime

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        n = len(self.sensors)
        if len(set(self.sensors)) != n:
            raise ValueError("sensor names must be unique")
        if len(self.scaler.mean) != n or len(self.scaler.scale) != n:
            raise ValueError(f"scaler statistics must have one value per sensor ({n})")
        if not all(math.isfinite(v) for v in [*self.scaler.mean, *self.scaler.scale]):
            raise ValueError("scaler statistics must be finite")
        if any(s <= 0 for s in self.scaler.scale):
            raise ValueError("scaler scales must be positive")
        if self.glitch_limits is not None and (
            len(self.glitch_limits) != n
            or not all(math.isfinite(v) and v > 0 for v in self.glitch_limits)
        ):
            raise ValueError(f"glitch limits must be {n} positive finite values, one per sensor")
        if TORCHSCRIPT_FILE not in self.files:
            raise ValueError(f"files must list {TORCHSCRIPT_FILE}")
        if REFERENCE_FILE not in self.files:
            raise ValueError(f"files must list {REFERENCE_FILE}")
        if self.golden is not None:
            shape = np.shape(self.golden.inputs)
            if len(shape) != 3 or shape[1:] != (self.window, n):
                raise ValueError(f"golden inputs must be (n, {self.window}, {n}), not {shape}")
            if np.shape(self.golden.errors) != (shape[0], n):
                raise ValueError(f"golden errors must be ({shape[0]}, {n})")
            if (
                not np.isfinite(self.golden.inputs).all()
                or not np.isfinite(self.golden.errors).all()
            ):
                raise ValueError("golden inputs and errors must be finite")
            if float(np.max(self.golden.errors)) <= 0:
                raise ValueError(
                    "golden errors are all zero: a model that reconstructs calibration "
                    "readings perfectly cannot flag anything"
                )
        return self

    @property
    def n_sensors(self) -> int:
        return len(self.sensors)

    @property
    def expects_readings(self) -> bool:
        """Whether the model's reconstruction of a reading is what it expected of it: a
        network scoring the squares of its residual. DPCA, CVA and a whitened residual write
        a quadratic form as a reconstruction, which expects nothing of the reading."""
        family = self.training.get("family", "autoencoder")  # none recorded: an autoencoder
        squares = self.training.get("residual", "squares") == "squares"
        return family not in ("dpca", "cva") and squares
