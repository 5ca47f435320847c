"""The feedback store's contract: the :class:`FeedbackStore` protocol and the errors it raises.

The calibration rooms code against this protocol only. :mod:`service.calibration.sql`
implements it on SQLite (one process, the embedded default) and on PostgreSQL (shared by
replicas) with one set of SQLAlchemy Core statements.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

from service.calibration.records import (
    LabelFilter,
    MaintenanceEvent,
    MaintenanceWindow,
    NewLabel,
    NewRun,
    NormalSample,
    PendingStatus,
    PendingThreshold,
    RecalibrationRun,
    StoredLabel,
    Submission,
    ThresholdSource,
    ThresholdVersion,
    WindowSpec,
)
from service.errors import ServiceError


class StoreError(Exception):
    """The store refused an operation; subclasses say why."""


class StoreUnavailable(StoreError):
    """The store can't be opened or set up at start-up; the message names where it is."""

    def __init__(self, where: Path | str, reason: str) -> None:
        super().__init__(
            f"cannot open the feedback store {where}: {reason} (is its folder writable, the "
            "disk full, another process holding it, or the server down? ANOMALY_STORE_URL or "
            "ANOMALY_STORE_PATH sets where it lives)"
        )


class StoreUnreachable(StoreError, ServiceError):
    """The store stopped answering while the service runs (a PostgreSQL server down or
    restarting, a disk failing): requests that need it get a 503; scoring goes on."""

    status_code = 503
    slug = "store-unavailable"
    title = "Feedback store unavailable"
    headers: ClassVar[dict[str, str]] = {"Retry-After": "5"}

    def __init__(self, where: str, reason: str) -> None:
        self.reason = reason
        ServiceError.__init__(
            self,
            f"the feedback store {where} is unreachable ({reason}); labels and threshold "
            "changes are refused until it answers again, scoring goes on with the thresholds "
            "in force",
        )


class IdempotencyConflict(StoreError):
    """A client label id was reused for different content."""

    def __init__(self, client_label_id: str) -> None:
        self.client_label_id = client_label_id
        super().__init__(
            f"client label id {client_label_id!r} was already used for a different submission"
        )


class PendingNotFound(StoreError):
    def __init__(self, pending_id: int) -> None:
        self.pending_id = pending_id
        super().__init__(f"no pending threshold with id {pending_id}")


class PendingAlreadyDecided(StoreError):
    def __init__(self, pending_id: int, status: str) -> None:
        self.pending_id = pending_id
        self.status = status
        super().__init__(f"pending threshold {pending_id} is already {status}")


class ThresholdVersionNotFound(StoreError):
    def __init__(self, model: str, version: int) -> None:
        self.model = model
        self.version = version
        super().__init__(f"model {model!r} has no threshold version {version}")


class WindowNotFound(StoreError):
    def __init__(self, window_id: int) -> None:
        self.window_id = window_id
        super().__init__(f"no maintenance window with id {window_id}")


class WindowAlreadyEnded(StoreError):
    def __init__(self, window_id: int) -> None:
        self.window_id = window_id
        super().__init__(f"maintenance window {window_id} has already ended")


@runtime_checkable
class FeedbackStore(Protocol):
    """What the calibration rooms need from a durable store.

    Promises every implementation keeps:

    - Thread-safe: the rooms call every method from worker threads, several at once.
    - Durable on return: a write method returns only once its transaction is committed
      and will survive a crash (the API acknowledges a label only after that).
    - Atomic: every multi-row change (a submission and its labels, a version and the
      pendings it supersedes, an approval) happens in one transaction; version numbers
      and ids are allocated inside it, so concurrent writers (other replicas included)
      never allocate the same one (constraints and row locks, not one process's lock).
    - Threshold versions are per model name, start at 1, only ever increase and are
      never rewritten; appending one supersedes the model's open pending thresholds.
    - At most one open (``"pending"``) pending threshold per model.
    - Ids and version numbers stay below ``records.MAX_ROW_ID``.
    - Failures are :class:`StoreError` (or a subclass below); a backend that loses its
      connection raises :class:`StoreUnreachable`, which the API answers with a 503.
    """

    @property
    def shared(self) -> bool:
        """Several processes may use this store at once (a server, not a file): it may be
        down while this process runs, or starts, and scoring goes on."""

    def ping(self) -> None:
        """Raise if the store cannot answer (readiness)."""

    def close(self) -> None:
        """Release the connection; no method is called afterwards."""

    def schema_version(self) -> int:
        """The number of the newest schema revision applied."""

    # --- labels ---------------------------------------------------------------------------

    def submit_labels(
        self,
        labels: Sequence[NewLabel],
        *,
        author: str,
        client_label_id: str | None,
        content_hash: str,
    ) -> Submission:
        """Write one submission with its labels (at least one, else :class:`StoreError`).

        With a ``client_label_id`` already stored: the stored submission (``replayed``
        true) when ``content_hash`` matches, :class:`IdempotencyConflict` otherwise, in
        the same transaction as the check. A label whose ``scored_anomaly`` is None is
        stored as ``error > threshold_value``."""

    def find_submission(self, client_label_id: str) -> tuple[str, Submission] | None:
        """The content hash and submission stored under this id (``replayed`` true)."""

    def list_labels(
        self, filters: LabelFilter, *, limit: int, before_id: int | None = None
    ) -> list[StoredLabel]:
        """At most ``limit`` labels matching ``filters``, newest (highest id) first, with
        ids below ``before_id`` when given."""

    def count_labels(self, filters: LabelFilter) -> int:
        """How many labels match ``filters``."""

    def normal_sample(
        self,
        model: str,
        model_version: str,
        *,
        since: float,
        limit: int,
        with_frozen: bool = True,
    ) -> NormalSample:
        """The newest ``limit`` labels ``normal`` given since ``since`` to this model
        version, oldest first. A reading (stream id, reading id) counts once, by its latest
        label, and not at all once anyone labelled it an anomaly; labels without a reading
        id (time ranges, carried readings) each count. Labels kept out of learning are not
        among them; those the learning freeze kept out come beside them (``frozen``), unless
        not ``with_frozen``."""

    def labelled_readings(
        self, model: str, readings: Sequence[tuple[str, str]]
    ) -> set[tuple[str, str]]:
        """Which of these (stream id, reading id) pairs carry a label of this model."""

    # --- threshold versions -----------------------------------------------------------------

    def latest_threshold(self, model: str, model_version: str) -> ThresholdVersion | None:
        """The highest version set for this model version, if any."""

    def newest_versions(self) -> dict[str, int]:
        """Every model's newest version number: what a replica compares with its own to
        learn that another one set a threshold."""

    def threshold_history(self, model: str) -> list[ThresholdVersion]:
        """Every version of the model, oldest first."""

    def latest_chosen_threshold(
        self, model: str, model_version: str, baseline: float, *, before: int | None = None
    ) -> ThresholdVersion | None:
        """The newest version of this artifact's thresholds (its model version and manifest
        threshold) a person chose (:data:`CHOSEN_BY_A_PERSON`), below ``before`` if given."""

    def threshold_version(self, model: str, version: int) -> ThresholdVersion:
        """One version, or :class:`ThresholdVersionNotFound`."""

    def append_threshold(
        self,
        model: str,
        model_version: str,
        *,
        value: float,
        baseline: float,
        source: ThresholdSource,
        reason: str,
        author: str,
        statistics: dict[str, Any],
    ) -> ThresholdVersion:
        """A new version numbered highest + 1 (:class:`StoreError` unless ``value > 0``);
        the model's open pendings become ``"superseded"``."""

    def ensure_threshold(
        self, model: str, model_version: str, *, value: float, reason: str
    ) -> ThresholdVersion:
        """The version in force for a model version being served, in one transaction:
        its latest version when that is the model's newest; else that value appended
        again (source ``"restore"``); else, for a model version never seen, or one whose
        stored baseline is not ``value`` (another artifact under the same name and
        version), ``value`` appended as source ``"manifest"`` with ``value`` as its
        baseline."""

    # --- pending thresholds -----------------------------------------------------------------

    def open_pending(self, model: str) -> PendingThreshold | None:
        """The model's open pending threshold, if any."""

    def get_pending(self, pending_id: int) -> PendingThreshold:
        """One pending threshold in any status, or :class:`PendingNotFound`."""

    def list_pending(
        self, model: str | None = None, status: PendingStatus | None = None
    ) -> list[PendingThreshold]:
        """Pending thresholds (of any status unless given), newest first."""

    def create_pending(
        self,
        model: str,
        model_version: str,
        *,
        candidate: float,
        current: ThresholdVersion,
        relative_change: float,
        reason: str,
        statistics: dict[str, Any],
    ) -> PendingThreshold:
        """Hold a candidate for approval; the model's older open pending is superseded."""

    def approve_pending(self, pending_id: int, *, author: str, reason: str) -> ThresholdVersion:
        """Append the candidate as a version (source ``"approval"``, the baseline of the
        version it was computed against) and mark the pending approved, atomically.
        :class:`PendingNotFound` or :class:`PendingAlreadyDecided` otherwise."""

    def reject_pending(self, pending_id: int, *, author: str, reason: str) -> PendingThreshold:
        """Mark an open pending rejected; the same errors as :meth:`approve_pending`."""

    # --- recalibration runs -----------------------------------------------------------------

    def record_run(self, run: NewRun) -> RecalibrationRun:
        """Record one recalibration run; ``finished_at`` is the store's clock now."""

    def list_runs(self, model: str | None = None, *, limit: int = 50) -> list[RecalibrationRun]:
        """The ``limit`` most recent runs (of one model when given), newest first."""

    # --- maintenance windows ----------------------------------------------------------------

    def create_window(self, spec: WindowSpec, *, author: str) -> MaintenanceWindow:
        """Store a window and its ``created`` audit line in one transaction."""

    def end_window(self, window_id: int, *, author: str, reason: str) -> MaintenanceWindow:
        """End a window now (its ``ended_at``) with an ``ended`` audit line, atomically;
        :class:`WindowNotFound`, or :class:`WindowAlreadyEnded` when it no longer applies."""

    def get_window(self, window_id: int) -> MaintenanceWindow:
        """One window, or :class:`WindowNotFound`."""

    def list_windows(
        self, *, since: float | None = None, limit: int = 200
    ) -> list[MaintenanceWindow]:
        """Newest first; with ``since``, only windows that still applied at or after it."""

    def window_events(self, window_id: int) -> list[MaintenanceEvent]:
        """A window's audit trail, oldest first."""
