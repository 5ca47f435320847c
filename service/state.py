"""The objects the lifespan builds and routes receive, and the typed dependencies for them.

To add a member: give :class:`AppState` a field, build it in ``service.app.build_state``
(the one place stateful objects are built; constructors start no tasks), start and stop
any task it runs in the lifespan, and, if it can be unhealthy, append a
:class:`ReadinessCheck` to ``state.readiness``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from prometheus_client import CollectorRegistry

from service.calibration.drift_monitor import DriftMonitor
from service.calibration.keeper import ThresholdKeeper
from service.calibration.labelling import LabellingDesk
from service.calibration.maintenance import MaintenanceWindows
from service.calibration.recalibration import Recalibration
from service.calibration.recalibrator import RecalibrationLoop
from service.calibration.replicas import ReplicaLink
from service.calibration.store import FeedbackStore
from service.errors import NotReady
from service.metrics import Metrics
from service.redaction import ChangeLog, full_reason, public_reason
from service.scoring.batching import ReadingBatcher
from service.scoring.pipeline import ScoringPipeline
from service.scoring.recent import RecentReadings
from service.scoring.registry import ModelRegistry
from service.scoring.stream_store import StreamStore
from service.scoring.streams import StreamStates
from service.scoring.thresholds import ThresholdBoard
from service.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """A named probe: returns None when fine, else the reason the service is not ready."""

    name: str
    probe: Callable[[], Awaitable[str | None]]
    # False: a failure is reported but the service stays ready (what it serves goes on).
    blocking: bool = True


@dataclass(slots=True)
class AppState:
    """Everything stateful in one app instance (one per ``create_app``)."""

    settings: Settings
    registry: CollectorRegistry
    metrics: Metrics
    thresholds: ThresholdBoard  # read only: the keeper's board
    models: ModelRegistry
    streams: StreamStates  # this process's states (with Redis: its copies of shared ones)
    recent: RecentReadings
    pipeline: ScoringPipeline
    batcher: ReadingBatcher  # single readings, one model call per turn
    store: FeedbackStore  # labels, threshold versions, recalibration runs
    keeper: ThresholdKeeper  # the one writer of thresholds; ``thresholds`` is its board
    desk: LabellingDesk  # labels and the review queue
    drift: DriftMonitor
    maintenance: MaintenanceWindows  # the one writer of maintenance windows
    recalibration: Recalibration  # one step per model
    recalibration_loop: RecalibrationLoop  # when the steps run (the lifespan starts it)
    stream_store: StreamStore  # scores against the stream states, wherever they live
    link: ReplicaLink  # leadership and other replicas' changes (the lifespan starts it)
    readiness: list[ReadinessCheck] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    # a probe that raised, logged as its reason changes (service.redaction), by check
    probe_logs: dict[str, ChangeLog] = field(default_factory=dict)

    def details(self) -> dict[str, str]:
        """What /readyz shows beside the checks (nothing secret: it is unauthenticated)."""
        shared = self.settings.store_location.startswith("postgres")
        return {
            "store": "postgresql" if shared else "sqlite",
            "recalibration_leader": self.link.describe(),
        }

    async def not_ready_reasons(self) -> dict[str, str | None]:
        """Every check's outcome: None for ok, else the reason."""
        reasons = await asyncio.gather(*(self._outcome(check) for check in self.readiness))
        return {check.name: reason for check, reason in zip(self.readiness, reasons, strict=True)}

    async def _outcome(self, check: ReadinessCheck) -> str | None:
        """One check's reason; the checks run side by side, so /readyz waits for the slowest
        dependency, not for the sum of them (each bounds its own wait)."""
        if check.name not in self.probe_logs:
            self.probe_logs[check.name] = ChangeLog(logger, f"readiness check {check.name}")
        raised = self.probe_logs[check.name]
        try:
            reason = await check.probe()
        except Exception as exc:  # a failing probe means not ready, never a 500
            raised.failed(full_reason(exc))
            return f"check failed: {public_reason(exc)}"
        raised.fine()
        return reason


def get_state(request: Request) -> AppState:
    """The app's state (plain function: call it anywhere a request is at hand)."""
    state: AppState | None = getattr(request.app.state, "services", None)
    if state is None:
        raise NotReady("the service is starting up or shutting down")
    return state


# The dependencies are ``async def``: FastAPI runs plain ``def`` dependencies in a thread
# pool, a hand-off the hot path cannot afford.
async def state_dependency(request: Request) -> AppState:
    return get_state(request)


async def settings_dependency(request: Request) -> Settings:
    return get_state(request).settings


async def pipeline_dependency(request: Request) -> ScoringPipeline:
    return get_state(request).pipeline


async def keeper_dependency(request: Request) -> ThresholdKeeper:
    return get_state(request).keeper


async def desk_dependency(request: Request) -> LabellingDesk:
    return get_state(request).desk


async def drift_dependency(request: Request) -> DriftMonitor:
    return get_state(request).drift


async def maintenance_dependency(request: Request) -> MaintenanceWindows:
    return get_state(request).maintenance


async def recalibration_dependency(request: Request) -> Recalibration:
    return get_state(request).recalibration


StateDep = Annotated[AppState, Depends(state_dependency)]
SettingsDep = Annotated[Settings, Depends(settings_dependency)]
PipelineDep = Annotated[ScoringPipeline, Depends(pipeline_dependency)]
KeeperDep = Annotated[ThresholdKeeper, Depends(keeper_dependency)]
DeskDep = Annotated[LabellingDesk, Depends(desk_dependency)]
DriftDep = Annotated[DriftMonitor, Depends(drift_dependency)]
RecalibrationDep = Annotated[Recalibration, Depends(recalibration_dependency)]
MaintenanceDep = Annotated[MaintenanceWindows, Depends(maintenance_dependency)]
