"""Domain errors that carry their HTTP status, rendered as RFC 9457 problem details.

Framework-free so the scoring core can raise them; ``service.api.problems`` installs the
one handler that turns them into ``application/problem+json`` responses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from pydantic import ValidationError

PROBLEM_TYPE_BASE = "https://sensor-anomaly-service.dev/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"


@dataclass(frozen=True, slots=True)
class FieldError:
    """One precise complaint: which field of which reading, and what is wrong with it."""

    field: str
    message: str
    reading_index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "reading_index": self.reading_index, "message": self.message}


def validation_problems(
    error: ValidationError, *, whole: str, name: Callable[[str], str] | None = None
) -> str:
    """pydantic's problems on one line, ``where: what; ...`` (its own text spans lines and
    links): ``where`` the dotted location (through ``name`` when given), ``whole`` for the
    object itself."""
    problems = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"])
        shown = whole if not where else where if name is None else name(where)
        problems.append(f"{shown}: {problem['msg']}")
    return "; ".join(problems)


class ServiceError(Exception):
    """Base of every error a client can cause or should be told about."""

    status_code: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self, detail: str, *, errors: list[FieldError] | None = None, cause: str | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        # What the log says beside ``detail`` and the answer does not (service.redaction).
        self.cause = cause

    def problem(self, instance: str | None = None) -> dict[str, Any]:
        return problem_body(
            status=self.status_code,
            slug=self.slug,
            title=self.title,
            detail=self.detail,
            errors=self.errors,
            instance=instance,
        )


def problem_body(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: list[FieldError] | None = None,
    instance: str | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = instance
    if errors:
        body["errors"] = [e.as_dict() for e in errors]
    return body


class MalformedBody(ServiceError):
    status_code = 400
    slug = "malformed-body"
    title = "Request body is not valid JSON"


class InvalidRequest(ServiceError):
    """The body parsed but its shape or values are wrong (field and reading index say where)."""

    status_code = 422
    slug = "invalid-request"
    title = "Request failed validation"


class InvalidReading(InvalidRequest):
    slug = "invalid-reading"
    title = "A reading failed validation"


class UnknownSensor(InvalidReading):
    slug = "unknown-sensor"
    title = "A reading names a sensor the model does not have"


class BatchTooLarge(ServiceError):
    status_code = 413
    slug = "batch-too-large"
    title = "Too many readings in one request"


class PayloadTooLarge(ServiceError):
    status_code = 413
    slug = "payload-too-large"
    title = "Request body too large"


class UnsupportedMediaType(ServiceError):
    status_code = 415
    slug = "unsupported-media-type"
    title = "Unsupported content type"


class UnknownModel(ServiceError):
    status_code = 404
    slug = "unknown-model"
    title = "No such model"


class UnknownStream(ServiceError):
    status_code = 404
    slug = "unknown-stream"
    title = "No such stream"


class ArtifactRejected(ServiceError):
    """A reload found a bad artifact; the last good model keeps serving."""

    status_code = 409
    slug = "artifact-rejected"
    title = "Model artifact rejected"


class NotReady(ServiceError):
    status_code = 503
    slug = "not-ready"
    title = "Service not ready"


class ModelFailure(ServiceError):
    """The model itself failed on valid input: our fault, never the client's."""

    status_code = 500
    slug = "model-failure"
    title = "The model failed to score valid input"


class StreamStateUnavailable(ServiceError):
    """The shared stream state (Redis) did not answer: scoring without it would smooth and
    debounce on a partial history, a silently wrong answer."""

    status_code = 503
    slug = "stream-state-unavailable"
    title = "Stream state unavailable"


class StreamContention(ServiceError):
    """Replicas kept updating the same stream at once; the client may retry."""

    status_code = 503
    slug = "stream-contention"
    title = "Stream busy on other replicas"


# --- thresholds (service.calibration.keeper) ---------------------------------------------


class PendingMissing(ServiceError):
    status_code = 404
    slug = "unknown-pending-threshold"
    title = "No such pending threshold"


class PendingClosed(ServiceError):
    status_code = 409
    slug = "pending-threshold-closed"
    title = "Pending threshold already decided"


class VersionMissing(ServiceError):
    status_code = 404
    slug = "unknown-threshold-version"
    title = "No such threshold version"


class VersionNotApplicable(ServiceError):
    status_code = 409
    slug = "threshold-version-not-applicable"
    title = "Threshold version belongs to another model version or artifact"
