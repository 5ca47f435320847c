"""Drift status: KS tests of recent confirmed normals against the calibration reference."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from service.calibration.drift import DriftReport
from service.calibration.service import CalibrationService
from service.security import Principal, require_scope
from service.state import CalibrationDep

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
    alpha: float
    min_effect: float
    retrain_effect: float
    drifted_sensors: list[str]
    sensors: list[SensorDriftOut]


router = APIRouter(prefix="/v1/drift", tags=["drift"])


def _status(
    model: str, model_version: str, report: DriftReport, service: CalibrationService
) -> DriftStatus:
    policy = service.drift_policy
    return DriftStatus(
        model=model,
        model_version=model_version,
        recommendation=report.recommendation,
        reason=report.reason,
        sufficient=report.sufficient,
        drifted=report.drifted,
        statistic=report.statistic,
        pvalue=report.pvalue,
        n_reference=report.n_reference,
        n_recent=report.n_recent,
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
async def drift_all(_: DriftPrincipal, service: CalibrationDep) -> list[DriftStatus]:
    statuses = []
    for model in service.registry.models():
        report = await service.check_drift(model.name)
        statuses.append(_status(model.name, model.version, report, service))
    return statuses


@router.get("/{model}", response_model=DriftStatus, summary="Drift status of one model")
async def drift_one(model: str, _: DriftPrincipal, service: CalibrationDep) -> DriftStatus:
    loaded = service.registry.get(model)
    report = await service.check_drift(loaded.name)
    return _status(loaded.name, loaded.version, report, service)
