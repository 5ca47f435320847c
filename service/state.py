"""The objects the lifespan builds and routes receive, and the typed dependencies for them.

To add a member (a feedback store, a recalibrator...): give :class:`AppState` a field
with a default, build it in ``service.app.build_state`` (or the lifespan) and, if it can
be unhealthy, append a :class:`ReadinessCheck` to ``state.readiness``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry

from service.calibration.service import CalibrationService
from service.errors import NotReady
from service.metrics import Metrics
from service.scoring.batching import ReadingBatcher
from service.scoring.pipeline import ScoringPipeline
from service.scoring.recent import RecentReadings
from service.scoring.registry import ModelRegistry
from service.scoring.streams import StreamStates
from service.scoring.thresholds import ThresholdBoard
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """A named probe: returns None when fine, else the reason the service is not ready."""

    name: str
    probe: Callable[[], Awaitable[str | None]]


@dataclass(slots=True)
class AppState:
    """Everything stateful in one app instance (one per ``create_app``)."""

    settings: Settings
    registry: CollectorRegistry
    metrics: Metrics
    thresholds: ThresholdBoard
    models: ModelRegistry
    streams: StreamStates
    recent: RecentReadings
    pipeline: ScoringPipeline
    calibration: CalibrationService | None = None  # feedback, thresholds, drift
    readiness: list[ReadinessCheck] = field(default_factory=list)
    scrape_hooks: list[Callable[[], None]] = field(default_factory=list)  # run before each scrape
    started_at: float = field(default_factory=time.time)
    batcher: ReadingBatcher = field(init=False)  # single readings, one model call per turn

    def __post_init__(self) -> None:
        self.batcher = ReadingBatcher(self.pipeline)

    async def not_ready_reasons(self) -> dict[str, str | None]:
        """Every check's outcome: None for ok, else the reason."""
        results: dict[str, str | None] = {}
        for check in self.readiness:
            try:
                results[check.name] = await check.probe()
            except Exception as exc:  # a failing probe means not ready, never a 500
                results[check.name] = f"check failed: {type(exc).__name__}: {exc}"
        return results


def get_state(request: Request) -> AppState:
    """The app's state (plain function: call it anywhere a request is at hand)."""
    state: AppState | None = getattr(request.app.state, "services", None)
    if state is None:
        raise NotReady("the service is starting up or shutting down")
    return state


# The dependencies are ``async def``: FastAPI runs plain ``def`` dependencies in a thread
# pool, which costs ~350 µs per request on the hot path.
async def state_dependency(request: Request) -> AppState:
    return get_state(request)


async def settings_dependency(request: Request) -> Settings:
    return get_state(request).settings


async def pipeline_dependency(request: Request) -> ScoringPipeline:
    return get_state(request).pipeline


async def models_dependency(request: Request) -> ModelRegistry:
    return get_state(request).models


async def calibration_dependency(request: Request) -> CalibrationService:
    service = get_state(request).calibration
    if service is None:
        raise NotReady("the feedback store is not open")
    return service


StateDep = Annotated[AppState, Depends(state_dependency)]
SettingsDep = Annotated[Settings, Depends(settings_dependency)]
PipelineDep = Annotated[ScoringPipeline, Depends(pipeline_dependency)]
ModelsDep = Annotated[ModelRegistry, Depends(models_dependency)]
CalibrationDep = Annotated[CalibrationService, Depends(calibration_dependency)]
