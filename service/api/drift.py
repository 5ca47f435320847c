"""Drift status: KS tests of recent confirmed normals against the calibration reference."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from service.api.openapi import problems
from service.api.params import ModelPath
from service.calibration.drift import DriftPolicy
from service.calibration.drift_monitor import ModelDrift
from service.security import Principal, require_scope
from service.state import DriftDep

DRIFT_SCOPE = require_scope("feedback", "admin")
DriftPrincipal = Annotated[Principal, Depends(DRIFT_SCOPE)]


class SensorDriftOut(BaseModel):
    sensor: str
    statistic: float = Field(description="KS statistic D.")
    pvalue: float
    adjusted_pvalue: float = Field(description="Benjamini–Hochberg adjusted over all sensors.")
    drifted: bool


class DriftStatus(BaseModel):
    model: str
    model_version: str
    recommendation: Literal["none", "recalibrate", "retrain"]
    reason: str
    sufficient: bool = Field(description="Enough recent confirmed normals to judge.")
    drifted: bool = Field(description="The reading error's distribution moved.")
    statistic: float | None = Field(description="KS statistic D on reading errors.")
    pvalue: float | None
    n_reference: int
    n_recent: int
    effective_reference: float | None = Field(
        description="How many independent readings the reference's reading errors are worth, "
        "from their autocorrelation in time order; the p-values count each sample so."
    )
    effective_recent: float | None = Field(
        description="How many independent readings the recent confirmed normals are worth: "
        "the labels of one request for one stream count 1 + (count - 1) / the model's "
        "memory (measured on its calibration run), so a stretch of consecutive readings "
        "is worth far fewer than its count."
    )
    alpha: float
    min_effect: float
    retrain_effect: float
    drifted_sensors: list[str]
    sensors: list[SensorDriftOut]


router = APIRouter(prefix="/v1/drift", tags=["drift"])


def _status(drift: ModelDrift, policy: DriftPolicy) -> DriftStatus:
    report = drift.report
    return DriftStatus(
        model=drift.model.name,
        model_version=drift.model.version,
        recommendation=report.recommendation,
        reason=report.reason,
        sufficient=report.sufficient,
        drifted=report.drifted,
        statistic=report.statistic,
        pvalue=report.pvalue,
        n_reference=report.n_reference,
        n_recent=report.n_recent,
        effective_reference=report.effective_reference,
        effective_recent=report.effective_recent,
        alpha=policy.alpha,
        min_effect=policy.min_effect,
        retrain_effect=policy.retrain_effect,
        drifted_sensors=report.drifted_sensors,
        sensors=[
            SensorDriftOut(
                sensor=s.sensor,
                statistic=s.statistic,
                pvalue=s.pvalue,
                adjusted_pvalue=s.adjusted_pvalue,
                drifted=s.drifted,
            )
            for s in report.sensors
        ],
    )


@router.get("", response_model=list[DriftStatus], summary="Drift status of every loaded model")
async def drift_all(_: DriftPrincipal, drift: DriftDep) -> list[DriftStatus]:
    return [_status(checked, drift.policy) for checked in await drift.check_all()]


@router.get(
    "/{model}",
    response_model=DriftStatus,
    summary="Drift status of one model",
    responses=problems(s404="No such model."),
)
async def drift_one(model: ModelPath, _: DriftPrincipal, drift: DriftDep) -> DriftStatus:
    return _status(await drift.check(model), drift.policy)
