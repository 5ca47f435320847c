"""Threshold administration: history, pending approvals, rollback, set by hand, recalibrate now.

Every change is a new threshold version recording who made it and why; nothing rewrites
history. All routes need the ``admin`` scope.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from service.api.bodies import JsonBodyRoute
from service.api.openapi import problems
from service.api.params import MAX_CLIENT_ID, ModelPath
from service.calibration.keeper import InForce
from service.calibration.records import (
    PendingThreshold,
    RecalibrationRun,
    ThresholdSource,
    ThresholdVersion,
)
from service.schemas import as_datetime
from service.scoring.manifest import NAME_MAX_LENGTH, NAME_PATTERN
from service.security import Principal, require_scope
from service.state import DriftDep, KeeperDep, RecalibrationDep

ADMIN_SCOPE = require_scope("admin")
AdminPrincipal = Annotated[Principal, Depends(ADMIN_SCOPE)]


def _with_datetimes(record: Any, *time_fields: str) -> dict[str, Any]:
    """A store record's fields, with its Unix-second times as aware datetimes for the API."""
    fields = dataclasses.asdict(record)
    return fields | {name: as_datetime(fields[name]) for name in time_fields}


class ThresholdVersionOut(BaseModel):
    model: str
    version: int
    model_version: str
    value: float
    baseline: float
    drift_ratio: float = Field(description="value / baseline - 1")
    source: ThresholdSource
    reason: str
    author: str
    statistics: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, v: ThresholdVersion) -> ThresholdVersionOut:
        return cls(**_with_datetimes(v, "created_at"), drift_ratio=v.value / v.baseline - 1.0)


class PendingOut(BaseModel):
    id: int
    model: str
    model_version: str
    candidate: float
    current_value: float
    current_version: int
    relative_change: float
    reason: str
    statistics: dict[str, Any]
    status: Literal["pending", "approved", "rejected", "superseded"]
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    applied_version: int | None

    @classmethod
    def of(cls, p: PendingThreshold) -> PendingOut:
        return cls(**_with_datetimes(p, "created_at", "decided_at"))


class RunOut(BaseModel):
    id: int
    model: str
    model_version: str
    trigger: str
    outcome: Literal["applied", "pending", "unchanged", "insufficient", "failed"]
    current_value: float
    candidate: float | None
    n_samples: int
    message: str
    statistics: dict[str, Any]
    threshold_version: int | None
    pending_id: int | None
    started_at: datetime
    finished_at: datetime

    @classmethod
    def of(cls, r: RecalibrationRun) -> RunOut:
        return cls(**_with_datetimes(r, "started_at", "finished_at"))


class CurrentThreshold(BaseModel):
    model: str
    model_version: str
    value: float
    version: int
    baseline: float
    drift_ratio: float
    pending: PendingOut | None


class ThresholdHistory(BaseModel):
    current: CurrentThreshold
    versions: list[ThresholdVersionOut] = Field(description="Oldest first.")
    pending: list[PendingOut] = Field(description="Candidates held for approval, newest first.")
    runs: list[RunOut] = Field(description="Recent recalibration runs, newest first.")


class SetThreshold(BaseModel):
    # Strict: true would read as 1.0 and "0.03" as a number; an admin's typo must not do that.
    model_config = ConfigDict(extra="forbid", strict=True)

    value: float = Field(
        gt=0,
        allow_inf_nan=False,
        description="Within a factor 1e6 of the model's training baseline (422 otherwise); "
        "the bounds shown are those of the models being served.",
    )
    reason: str = Field(min_length=1, max_length=2000)


def _whole_number(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3 (as JSON Schema's ``integer`` says);
    3.5, true and "3" stay refused by the strict check."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    version: Annotated[int, BeforeValidator(_whole_number)] = Field(
        ge=1, le=MAX_CLIENT_ID, description="The version whose value becomes current again."
    )
    reason: str = Field(default="", max_length=2000)


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    reason: str = Field(default="", max_length=2000)


router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=JsonBodyRoute)
_NO_MODEL = "No such model."
_PENDING_REFUSALS = problems(
    s404="No pending threshold with that id, or its model is not served.",
    s409="It was already decided, or superseded, or its model version is gone.",
)
PendingId = Annotated[int, Path(ge=1, le=MAX_CLIENT_ID)]


def _current(state: InForce) -> CurrentThreshold:
    snapshot = state.snapshot
    return CurrentThreshold(
        model=state.model.name,
        model_version=state.model.version,
        value=snapshot.value,
        version=snapshot.version,
        baseline=snapshot.baseline,
        drift_ratio=snapshot.drift_ratio,
        pending=None if state.pending is None else PendingOut.of(state.pending),
    )


@router.get("/thresholds", response_model=list[CurrentThreshold], summary="Thresholds in force")
async def list_thresholds(_: AdminPrincipal, keeper: KeeperDep) -> list[CurrentThreshold]:
    return [_current(state) for state in await keeper.all_in_force()]


@router.get(
    "/thresholds/{model}",
    response_model=ThresholdHistory,
    summary="A model's threshold history, pending candidates and recent runs",
    responses=problems(s404=_NO_MODEL),
)
async def threshold_history(
    model: ModelPath,
    _: AdminPrincipal,
    keeper: KeeperDep,
    runs: Annotated[int, Query(ge=0, le=500)] = 20,
) -> ThresholdHistory:
    current = _current(await keeper.in_force(model))
    versions = await keeper.versions(current.model)
    pending = await keeper.pendings(current.model)
    recent_runs = await keeper.runs(current.model, limit=runs)
    return ThresholdHistory(
        current=current,
        versions=[ThresholdVersionOut.of(v) for v in versions],
        pending=[PendingOut.of(p) for p in pending],
        runs=[RunOut.of(r) for r in recent_runs],
    )


@router.post(
    "/thresholds/{model}",
    status_code=201,
    response_model=ThresholdVersionOut,
    summary="Set a threshold by hand (within a factor 1e6 of the training baseline)",
    responses=problems(s404=_NO_MODEL),
)
async def set_threshold(
    model: ModelPath, body: SetThreshold, principal: AdminPrincipal, keeper: KeeperDep
) -> ThresholdVersionOut:
    version = await keeper.set_by_hand(model, body.value, reason=body.reason, author=principal.name)
    return ThresholdVersionOut.of(version)


@router.post(
    "/thresholds/{model}/rollback",
    status_code=201,
    response_model=ThresholdVersionOut,
    summary="Make an earlier version's value current again, as a new version",
    responses=problems(
        s404="No such model, or no such version of its threshold.",
        s409="That version belongs to another model version and cannot apply.",
    ),
)
async def rollback(
    model: ModelPath, body: Rollback, principal: AdminPrincipal, keeper: KeeperDep
) -> ThresholdVersionOut:
    version = await keeper.rollback(model, body.version, reason=body.reason, author=principal.name)
    return ThresholdVersionOut.of(version)


@router.post(
    "/thresholds/{model}/recalibrate",
    response_model=RunOut,
    summary="Run a recalibration step now (same guards as the background task)",
    responses=problems(s404=_NO_MODEL),
)
async def recalibrate_now(
    model: ModelPath,
    principal: AdminPrincipal,
    recalibration: RecalibrationDep,
    drift: DriftDep,
) -> RunOut:
    run = await recalibration.recalibrate(model, trigger=f"manual:{principal.name}")
    await drift.check(model)
    return RunOut.of(run)


@router.post(
    "/pending-thresholds/{pending_id}/approve",
    status_code=201,
    response_model=ThresholdVersionOut,
    summary="Apply a held candidate as a new version",
    responses=_PENDING_REFUSALS,
)
async def approve(
    pending_id: PendingId, body: Decision, principal: AdminPrincipal, keeper: KeeperDep
) -> ThresholdVersionOut:
    version = await keeper.approve(pending_id, reason=body.reason, author=principal.name)
    return ThresholdVersionOut.of(version)


@router.post(
    "/pending-thresholds/{pending_id}/reject",
    response_model=PendingOut,
    summary="Discard a held candidate",
    responses=_PENDING_REFUSALS,
)
async def reject(
    pending_id: PendingId, body: Decision, principal: AdminPrincipal, keeper: KeeperDep
) -> PendingOut:
    pending = await keeper.reject(pending_id, reason=body.reason, author=principal.name)
    return PendingOut.of(pending)


@router.get("/recalibration-runs", response_model=list[RunOut], summary="Recent recalibration runs")
async def list_runs(
    _: AdminPrincipal,
    keeper: KeeperDep,
    model: Annotated[str | None, Query(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> list[RunOut]:
    runs = await keeper.runs(model, limit=limit)
    return [RunOut.of(r) for r in runs]
