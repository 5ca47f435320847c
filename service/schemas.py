"""Request and response shapes, for the OpenAPI document and non-hot-path replies.

The scoring route parses its body by hand (orjson into numpy) for speed; these models
document exactly what it accepts and returns, with examples.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from service.scoring.manifest import NAME_MAX_LENGTH, NAME_PATTERN
from service.scoring.payload import (
    EARLIEST_TIMESTAMP,
    FLOAT32_MAX,
    LATEST_TIMESTAMP,
    MAX_STREAM_ID,
    STREAM_ID_PATTERN,
)

AlertState = Literal["normal", "alert", "cooldown", "warming_up", "suppressed"]
SensorValue = Annotated[float, Field(ge=-FLOAT32_MAX, le=FLOAT32_MAX)]
"""A value the model (float32) can hold: anything larger is refused, never rounded to inf."""
UnixSeconds = Annotated[float, Field(ge=EARLIEST_TIMESTAMP, le=LATEST_TIMESTAMP)]

SuppressedBy = Annotated[
    int | None,
    Field(
        description="A suppress_alerts maintenance window covers the reading (its id): alert "
        "states read `suppressed` and no alert is raised. Absent outside any window."
    ),
]
ExcludedBy = Annotated[
    int | None,
    Field(
        description="An exclude_from_learning maintenance window covers the reading (its id): "
        "it never reaches recalibration, the drift sample or the audit sample."
    ),
]


class _Doc(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReadingIn(_Doc):
    """A reading with its optional extras; a bare list of numbers is accepted too."""

    values: list[SensorValue] | dict[str, SensorValue] = Field(
        description="One value per sensor in the manifest's order, or an object keyed by "
        "sensor name (every sensor, no others).",
    )
    timestamp: UnixSeconds | datetime | None = Field(
        default=None, description="Unix seconds or ISO 8601 with a zone; default: receive time."
    )
    reading_id: str | None = Field(
        default=None,
        max_length=256,
        description="Your id for the reading (unique within the request); default: generated.",
    )


def exactly_one_of(*fields: str, only_with: dict[str, str] | None = None) -> dict[str, Any]:
    """A JSON Schema ``oneOf`` saying exactly one of ``fields`` is given (present and not
    null); ``only_with`` maps a field to the one it may accompany (null otherwise)."""
    null = {"type": "null"}
    branches = []
    for chosen in fields:
        properties: dict[str, Any] = {name: null for name in fields if name != chosen}
        properties[chosen] = {"not": null}
        for name, partner in (only_with or {}).items():
            if partner != chosen:
                properties[name] = null
        branches.append({"required": [chosen], "properties": properties})
    return {"oneOf": branches}


class ScoreRequest(_Doc):
    """One reading (`reading`) or a batch (`readings`) from one stream."""

    model_config = ConfigDict(json_schema_extra=exactly_one_of("reading", "readings"))

    stream_id: str = Field(
        min_length=1,
        max_length=MAX_STREAM_ID,
        pattern=STREAM_ID_PATTERN,
        description="Smoothing state is per stream.",
    )
    model: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        max_length=NAME_MAX_LENGTH,
        description="Model name; default: the default model.",
    )
    reading: list[SensorValue] | ReadingIn | None = Field(
        default=None, description="A single reading."
    )
    readings: list[list[SensorValue] | ReadingIn] | None = Field(
        default=None, description="A batch, oldest first (at most the configured maximum)."
    )


class TopSensor(_Doc):
    sensor: str
    share: float = Field(description="This sensor's share of the reading's squared error (0-1).")
    observed: float = Field(description="The value received.")
    reconstructed: float | None = Field(
        description="What the model expected (a network's reconstruction of the reading); "
        "null for DPCA, CVA and a network with a whitened residual, whose statistic is a "
        "quadratic form that expects nothing of the reading: read the share."
    )


class ReadingResult(_Doc):
    reading_id: str
    status: Literal["scored", "warming_up"]
    error: float | None = Field(default=None, description="Reconstruction error (mean squared).")
    score: float | None = Field(default=None, description="error / threshold; > 1 is anomalous.")
    anomaly: bool | None = Field(
        default=None,
        description="Flag: score > 1; for a model that declares its smoothing (its threshold "
        "was set on smoothed scores), smoothed_score > 1.",
    )
    smoothed_score: float | None = Field(default=None, description="The stream's smoothed score.")
    alert_state: AlertState = Field(description="Debounced state of the stream after this reading.")
    alert: bool
    top_sensors: list[TopSensor] | None = None
    readings_needed: int | None = Field(
        default=None, description="While warming up: readings still needed before scores."
    )
    timestamp: float | None = Field(default=None, description="Echoed when the request sent one.")
    model: str
    model_version: str
    threshold: float
    threshold_version: int
    suppressed_by_window: SuppressedBy = None
    excluded_from_learning_by_window: ExcludedBy = None


class ScoreResponse(_Doc):
    stream_id: str
    model: str
    model_version: str
    threshold: float
    threshold_version: int
    result: ReadingResult | None = Field(default=None, description="For a `reading` request.")
    results: list[ReadingResult] | None = Field(default=None, description="For `readings`.")
    alerts_raised: int | None = Field(default=None, description="New alerts in this batch.")
    suppressed_by_window: SuppressedBy = None
    excluded_from_learning_by_window: ExcludedBy = None


class BulkScoreResponse(_Doc):
    """Reply to a binary body: one array per field, in reading order, one entry per scored
    reading (the first ``warming_up`` readings sent have none: entry ``i`` is reading
    ``warming_up + i``)."""

    stream_id: str
    model: str
    model_version: str
    threshold: float
    threshold_version: int
    count: int
    warming_up: int = Field(
        description="Leading readings that produced no score: each array's entry i is "
        "reading warming_up + i."
    )
    first_reading_id: str
    last_reading_id: str = Field(description="Ids in between follow the same numbering.")
    alerts_raised: int
    sensors: list[str]
    error: list[float]
    score: list[float]
    anomaly: list[bool]
    smoothed_score: list[float]
    alert: list[bool]
    alert_state_code: list[int] = Field(description="Index into alert_state_names.")
    alert_state_names: list[str]
    top_sensor_index: list[list[int]] = Field(description="Indexes into sensors.")
    top_sensor_share: list[list[float]]
    suppressed_by_window: SuppressedBy = None
    excluded_from_learning_by_window: ExcludedBy = None


class ProblemError(_Doc):
    field: str
    reading_index: int | None
    message: str


class Problem(_Doc):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ProblemError] | None = None


class ThresholdOut(_Doc):
    current: float
    baseline: float = Field(description="Set at training time.")
    version: int


class CalibrationOut(_Doc):
    quantile: float
    n_calibration: int
    source: str
    false_alarm_rate_ci: tuple[float, float]


class FileOut(_Doc):
    format: str
    sha256: str
    bytes: int


class ModelSummary(_Doc):
    name: str
    version: str
    default: bool
    window: int
    n_sensors: int
    threshold: ThresholdOut


class SmoothingOut(_Doc):
    method: Literal["none", "mean", "median", "ewma"]
    window: int
    alpha: float
    start: float | None = Field(
        default=None,
        description="The raw score (the threshold's units) a new stream's smoothing starts "
        "from, the calibration scores' level; null: from the stream's first score (models "
        "without smoothing, and models written before it).",
    )


class ModelDetail(ModelSummary):
    sensors: list[str]
    calibration: CalibrationOut
    smoothing: SmoothingOut | None = Field(
        description="The score smoothing the threshold was set for, which the service applies "
        "unless ANOMALY_SMOOTHING_METHOD overrides it; null for models written before it was "
        "declared (smoothed as the settings say)."
    )
    glitch_guard: bool = Field(
        default=False,
        description="Whether a one-reading glitch is scored once, at its own reading: a "
        "sensor's value that jumps from both neighbours by more than its limit (the largest "
        "such jump in training, at least 3 training SDs) is put back to their mean in the "
        "windows after its own (docs/training.md).",
    )
    files: dict[str, FileOut]
    path: str
    created_at: datetime
    torch_version: str
    training_metrics: dict[str, Any]


class StreamStatus(_Doc):
    """What the service remembers about one stream."""

    stream_id: str
    model: str
    model_version: str
    alert_state: AlertState
    smoothed_score: float = Field(
        description="The last smoothed score; before any score, where the model's declared "
        "smoothing starts (0 for a model that declares no start)."
    )
    readings_buffered: int = Field(
        description="Readings held for the model's input window (with the glitch guard one "
        "more: the oldest one's predecessor, to judge it on)."
    )
    window: int
    idle_seconds: float = Field(description="Seconds since the stream was last scored.")


class ModelList(_Doc):
    default_model: str | None
    models: list[ModelSummary]
    problems: dict[str, str] = Field(description="Artifacts found but not served, and why.")
    refused: dict[str, str] = Field(
        default_factory=dict,
        description="Newer versions refused while an older good one is served (name/version: why).",
    )


class ReloadResult(_Doc):
    reloaded: list[ModelSummary]


class Liveness(_Doc):
    status: Literal["alive"]


class Readiness(_Doc):
    status: Literal["ready", "not_ready"]
    checks: dict[str, str] = Field(description='"ok", or why the check fails.')
    refused_artifacts: dict[str, str] = Field(
        default_factory=dict,
        description="Model versions refused while an older good version of the same model is "
        "served (name/version: why); they do not make the service unready.",
    )
    details: dict[str, str] = Field(
        default_factory=dict,
        description="The store's backend (sqlite or postgresql) and which replica leads "
        "recalibration. A failing check the service stays ready through (the shared store "
        "down: scoring goes on) is in `checks` with its reason.",
    )


def as_datetime(seconds: float | None) -> datetime | None:
    """Unix seconds as stored, shown to clients as an aware UTC datetime. None for a time no
    date can show (only rows stored before reading times were range-checked hold one): one
    such row must not make every listing that includes it fail."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
