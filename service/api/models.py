"""What is being served: models, their sensors, thresholds and calibration facts."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.openapi import problems
from service.api.params import ModelPath
from service.schemas import (
    CalibrationOut,
    FileOut,
    ModelDetail,
    ModelList,
    ModelSummary,
    SmoothingOut,
    ThresholdOut,
)
from service.scoring.registry import LoadedModel, ModelRegistry
from service.scoring.thresholds import ThresholdBoard
from service.state import StateDep

router = APIRouter(prefix="/v1/models", tags=["models"])


def summary(models: ModelRegistry, thresholds: ThresholdBoard, model: LoadedModel) -> ModelSummary:
    current = thresholds.get(model.name)
    return ModelSummary(
        name=model.name,
        version=model.version,
        default=models.default_name == model.name,
        window=model.window,
        n_sensors=model.manifest.n_sensors,
        threshold=ThresholdOut(
            current=current.value, baseline=current.baseline, version=current.version
        ),
    )


def detail(models: ModelRegistry, thresholds: ThresholdBoard, model: LoadedModel) -> ModelDetail:
    manifest = model.manifest
    return ModelDetail(
        **summary(models, thresholds, model).model_dump(),
        sensors=manifest.sensors,
        calibration=CalibrationOut(
            quantile=manifest.threshold.quantile,
            n_calibration=manifest.threshold.n_calibration,
            source=manifest.threshold.source,
            false_alarm_rate_ci=manifest.threshold.false_alarm_rate_ci,
        ),
        smoothing=None
        if manifest.smoothing is None
        else SmoothingOut(**manifest.smoothing.model_dump()),
        glitch_guard=manifest.glitch_limits is not None,
        files={
            name: FileOut(format=f.format, sha256=f.sha256, bytes=f.bytes)
            for name, f in manifest.files.items()
        },
        path=f"{model.name}/{model.version}",
        created_at=manifest.created_at,
        torch_version=manifest.torch_version,
        training_metrics=manifest.metrics,
    )


@router.get("", response_model=ModelList, summary="Models being served")
async def list_models(state: StateDep) -> ModelList:
    models = state.models
    return ModelList(
        default_model=models.default_name,
        models=[summary(models, state.thresholds, m) for m in models.models()],
        problems=dict(models.problems),
        refused=dict(models.refused),
    )


@router.get(
    "/{name}",
    response_model=ModelDetail,
    summary="One model: sensors, window, threshold, calibration, files",
    responses=problems(s404="No such model."),
)
async def get_model(name: ModelPath, state: StateDep) -> ModelDetail:
    return detail(state.models, state.thresholds, state.models.get(name))
