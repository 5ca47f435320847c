"""The records the calibration rooms and the store pass between them: one dataclass each.

Times are Unix seconds (floats); the API turns them into datetimes at its edge.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

LabelValue = Literal["normal", "anomaly"]
LabelSource = Literal["reading_id", "readings", "time_range"]
ThresholdSource = Literal["manifest", "recalibration", "approval", "manual", "rollback", "restore"]
CHOSEN_BY_A_PERSON: frozenset[ThresholdSource] = frozenset(
    {"manifest", "manual", "approval", "rollback"}
)
"""Sources of a value a person chose (a ``restore``, the model version served again, repeats
a value without anyone choosing it): automatic steps are capped from the newest of these."""
PendingStatus = Literal["pending", "approved", "rejected", "superseded"]
RunOutcome = Literal["applied", "pending", "unchanged", "insufficient", "failed"]
MAX_ROW_ID = 2**63 - 1  # SQLite's largest INTEGER: ids and versions from clients stay below
# Why a label is kept out of learning when its reading was scored during an alert and labelled
# as part of a range; the store finds these labels by it (they still measure how often normal
# operation exceeds the threshold, see FrozenNormals).
LEARNING_FREEZE = "learning freeze: scored during an alert, labelled as part of a range"


@dataclass(frozen=True, slots=True)
class NewLabel:
    """A label as the API hands it to the store (errors already computed)."""

    model: str
    model_version: str
    label: LabelValue
    error: float
    sensor_errors: tuple[float, ...]
    threshold_value: float
    threshold_version: int
    source: LabelSource
    stream_id: str | None = None
    reading_id: str | None = None
    reading_time: float | None = None
    note: str | None = None
    # What the scorer decided for the reading: flagged readings (anomaly or alert) are the
    # ones operators are asked to review, so their labels are over-represented.
    # None: the error above the threshold in force (carried readings scored at labelling).
    scored_anomaly: bool | None = None
    scored_alert: bool = False
    # Why the label must not be learned from (None: it may be): a maintenance window, or
    # the learning freeze on readings scored during an alert (service.calibration.labelling).
    excluded_from_learning: str | None = None
    # The error smoothed as the stream's scores were, in the error's units: what the
    # threshold of a model that declares its smoothing applies to.
    score: float | None = None


@dataclass(frozen=True, slots=True)
class StoredLabel:
    id: int
    submission_id: int
    model: str
    model_version: str
    label: LabelValue
    error: float
    sensor_errors: tuple[float, ...]
    threshold_value: float
    threshold_version: int
    source: LabelSource
    stream_id: str | None
    reading_id: str | None
    reading_time: float | None
    note: str | None
    author: str
    created_at: float
    scored_anomaly: bool = False
    scored_alert: bool = False
    excluded_from_learning: str | None = None
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """One feedback request as stored; ``replayed`` says it was found, not written, this time."""

    id: int
    client_label_id: str | None
    author: str
    created_at: float
    labels: tuple[StoredLabel, ...]
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class ThresholdVersion:
    model: str
    version: int
    model_version: str
    value: float
    baseline: float
    source: ThresholdSource
    reason: str
    author: str
    statistics: dict[str, Any]
    created_at: float


@dataclass(frozen=True, slots=True)
class PendingThreshold:
    id: int
    model: str
    model_version: str
    candidate: float
    current_value: float
    current_version: int
    relative_change: float
    reason: str
    statistics: dict[str, Any]
    status: PendingStatus
    created_at: float
    decided_by: str | None
    decided_at: float | None
    applied_version: int | None


@dataclass(frozen=True, slots=True)
class NewRun:
    """A recalibration run as the keeper hands it to the store (the store adds id and
    ``finished_at``)."""

    model: str
    model_version: str
    trigger: str
    outcome: RunOutcome
    current_value: float
    candidate: float | None
    n_samples: int
    message: str
    statistics: dict[str, Any]
    threshold_version: int | None
    pending_id: int | None
    started_at: float


@dataclass(frozen=True, slots=True)
class RecalibrationRun(NewRun):
    """A run as stored: what the keeper handed over, with the store's id and clock."""

    id: int
    finished_at: float


@dataclass(frozen=True, slots=True)
class LabelFilter:
    model: str | None = None
    label: LabelValue | None = None
    stream_id: str | None = None
    author: str | None = None
    since: float | None = None
    until: float | None = None


@dataclass(frozen=True, slots=True)
class FrozenNormals:
    """Labels ``normal`` the learning freeze kept out (readings scored during an alert and
    labelled as part of a time range), oldest first, as :class:`NormalSample` has them. They
    may be normal operation or a fault that lasts, so no candidate is computed from them;
    how often normal operation exceeds the threshold is measured both with and without them.
    Those ``released`` are known normal operation: they count in that measure and in the
    representative labels' flagged share."""

    errors: tuple[float, ...] = ()
    scores: tuple[float, ...] = ()
    spans: tuple[str, ...] = ()
    released: tuple[bool, ...] = ()
    """A label given to the reading's id (one click in the review queue) is learned from:
    the reading is known to be normal operation, as labelled with its range."""

    def __post_init__(self) -> None:
        """Unknown scores: none recorded; spans: all one; releases: none."""
        n = len(self.errors)
        if not self.scores:
            object.__setattr__(self, "scores", (math.nan,) * n)
        if not self.spans:
            object.__setattr__(self, "spans", ("",) * n)
        if not self.released:
            object.__setattr__(self, "released", (False,) * n)


@dataclass(frozen=True, slots=True)
class NormalSample:
    """Confirmed-normal errors in a rolling window, oldest first.

    ``flagged``: the reading was an anomaly or in an alert when scored. ``representative``:
    the label came with its neighbours (a time range or carried readings), not picked from
    the review queue, so its flagged share is the stream's own. ``spans``: which labels came
    in one request for one stream (the same key), so may be neighbouring readings that share
    the model's memory; empty when the store does not say (then all are taken as one).
    ``scores``: each error smoothed as its stream was when scored (NaN: not recorded).
    ``frozen``: the labels of the same window the learning freeze kept out of this sample."""

    errors: tuple[float, ...]
    sensor_errors: tuple[tuple[float, ...], ...]
    label_ids: tuple[int, ...] = field(default=())
    flagged: tuple[bool, ...] = field(default=())
    representative: tuple[bool, ...] = field(default=())
    spans: tuple[str, ...] = field(default=())
    scores: tuple[float, ...] = field(default=())
    frozen: FrozenNormals = field(default_factory=FrozenNormals)

    def __post_init__(self) -> None:
        """A store that does not know the flags: every label unflagged and representative;
        nor the scores: none recorded."""
        if not self.flagged:
            object.__setattr__(self, "flagged", (False,) * len(self.errors))
        if not self.representative:
            object.__setattr__(self, "representative", (True,) * len(self.errors))
        if not self.scores:
            object.__setattr__(self, "scores", (math.nan,) * len(self.errors))


def content_fingerprint(payload: Any) -> str:
    """Stable hash of a request's content, to tell an idempotent replay from a conflicting reuse."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


MaintenanceAction = Literal["created", "ended"]


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """A maintenance window as an operator asks for it (times in Unix seconds).

    Scope: ``model`` (None: every model) and at most one of ``stream_id`` (one stream) and
    ``stream_prefix`` (every stream whose id starts with it); neither: every stream."""

    starts_at: float
    ends_at: float | None  # None: open-ended, until someone ends it
    suppress_alerts: bool
    exclude_from_learning: bool
    reason: str
    model: str | None = None
    stream_id: str | None = None
    stream_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class MaintenanceWindow:
    id: int
    model: str | None
    stream_id: str | None
    stream_prefix: str | None
    starts_at: float
    ends_at: float | None
    suppress_alerts: bool
    exclude_from_learning: bool
    reason: str
    author: str
    created_at: float
    ended_at: float | None  # set when someone ended it early
    ended_by: str | None
    end_reason: str | None

    @property
    def until(self) -> float:
        """When it stops applying: its end, or the moment it was ended early (inf: open)."""
        ends = [t for t in (self.ends_at, self.ended_at) if t is not None]
        return min(ends) if ends else float("inf")

    def covers(self, model: str, stream_id: str | None, at: float) -> bool:
        """Whether a reading of this model and stream at ``at`` falls inside the window."""
        if not self.starts_at <= at < self.until:
            return False
        if self.model is not None and self.model != model:
            return False
        if self.stream_id is not None:
            return stream_id == self.stream_id
        if self.stream_prefix is not None:
            return stream_id is not None and stream_id.startswith(self.stream_prefix)
        return True


@dataclass(frozen=True, slots=True)
class MaintenanceEvent:
    """One line of a window's audit trail."""

    id: int
    window_id: int
    action: MaintenanceAction
    author: str
    reason: str
    at: float
