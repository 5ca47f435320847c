"""Maintenance windows: set, list, end early, read the audit trail.

Setting and ending a window needs the ``admin`` scope; reading them, ``feedback`` or
``admin`` (operators who label need to see why a stream raised nothing).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
)

from service.api.bodies import JsonBodyRoute
from service.api.openapi import problems
from service.calibration.maintenance import Mode, modes_of
from service.calibration.records import (
    MAX_ROW_ID,
    MaintenanceEvent,
    MaintenanceWindow,
    WindowSpec,
)
from service.schemas import as_datetime
from service.security import Principal, require_scope
from service.state import MaintenanceDep as WindowsDep

AdminPrincipal = Annotated[Principal, Depends(require_scope("admin"))]
ReaderPrincipal = Annotated[Principal, Depends(require_scope("feedback", "admin"))]

WindowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]


class NewWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(default=None, max_length=200, description="None: every model.")
    stream_id: str | None = Field(default=None, min_length=1, max_length=200)
    stream_prefix: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Every stream whose id starts with this. Neither it nor stream_id: "
        "every stream.",
    )
    starts_at: AwareDatetime | None = Field(default=None, description="Default: now.")
    ends_at: AwareDatetime | None = Field(default=None, description="None: open-ended.")
    modes: list[Mode] = Field(min_length=1, max_length=2)
    reason: str = Field(min_length=1, max_length=2000)

    # Field validators, not one on the model, so that the problem body names the field.
    @field_validator("stream_prefix")
    @classmethod
    def _one_scope(cls, prefix: str | None, info: ValidationInfo) -> str | None:
        if prefix is not None and info.data.get("stream_id") is not None:
            raise ValueError("give stream_id or stream_prefix, not both")
        return prefix

    @field_validator("modes")
    @classmethod
    def _distinct(cls, modes: list[Mode]) -> list[Mode]:
        if len(set(modes)) != len(modes):
            raise ValueError("modes must not repeat")
        return modes


class EndWindow(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=2000)


class EventOut(BaseModel):
    action: Literal["created", "ended"]
    author: str
    reason: str
    at: datetime | None

    @classmethod
    def of(cls, event: MaintenanceEvent) -> EventOut:
        return cls(
            action=event.action, author=event.author, reason=event.reason, at=as_datetime(event.at)
        )


class WindowOut(BaseModel):
    id: int
    model: str | None
    stream_id: str | None
    stream_prefix: str | None
    starts_at: datetime | None
    ends_at: datetime | None
    modes: list[Mode]
    reason: str
    author: str
    created_at: datetime | None
    ended_at: datetime | None = Field(description="Set when someone ended it early.")
    ended_by: str | None
    end_reason: str | None
    status: Literal["scheduled", "active", "over"]
    events: list[EventOut] | None = Field(default=None, description="The audit trail (one window).")

    @classmethod
    def of(
        cls, w: MaintenanceWindow, now: float, events: list[MaintenanceEvent] | None = None
    ) -> WindowOut:
        status: Literal["scheduled", "active", "over"] = (
            "over" if w.until <= now else "scheduled" if w.starts_at > now else "active"
        )
        return cls(
            id=w.id,
            model=w.model,
            stream_id=w.stream_id,
            stream_prefix=w.stream_prefix,
            starts_at=as_datetime(w.starts_at),
            ends_at=as_datetime(w.ends_at),
            modes=modes_of(w),
            reason=w.reason,
            author=w.author,
            created_at=as_datetime(w.created_at),
            ended_at=as_datetime(w.ended_at),
            ended_by=w.ended_by,
            end_reason=w.end_reason,
            status=status,
            events=None if events is None else [EventOut.of(e) for e in events],
        )


router = APIRouter(
    prefix="/v1/maintenance-windows", tags=["maintenance"], route_class=JsonBodyRoute
)


@router.get("", response_model=list[WindowOut], summary="Maintenance windows, newest first")
async def list_windows(
    _: ReaderPrincipal,
    windows: WindowsDep,
    current: Annotated[
        bool, Query(description="Only windows active now or scheduled later.")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[WindowOut]:
    found = await windows.listing(current_only=current, limit=limit)
    now = windows.clock()
    return [WindowOut.of(w, now) for w in found]


@router.post(
    "",
    status_code=201,
    response_model=WindowOut,
    summary="Set a maintenance window",
    responses=problems(s404="No such model."),
)
async def create_window(
    body: NewWindow, principal: AdminPrincipal, windows: WindowsDep
) -> WindowOut:
    now = windows.clock()
    spec = WindowSpec(
        starts_at=now if body.starts_at is None else body.starts_at.timestamp(),
        ends_at=None if body.ends_at is None else body.ends_at.timestamp(),
        suppress_alerts="suppress_alerts" in body.modes,
        exclude_from_learning="exclude_from_learning" in body.modes,
        reason=body.reason,
        model=body.model,
        stream_id=body.stream_id,
        stream_prefix=body.stream_prefix,
    )
    window = await windows.create(spec, author=principal.name)
    return WindowOut.of(window, windows.clock())


@router.get(
    "/{window_id}",
    response_model=WindowOut,
    summary="One window with its audit trail",
    responses=problems(s404="No maintenance window with this id."),
)
async def get_window(window_id: WindowId, _: ReaderPrincipal, windows: WindowsDep) -> WindowOut:
    window, events = await windows.get(window_id)
    return WindowOut.of(window, windows.clock(), events)


@router.post(
    "/{window_id}/end",
    response_model=WindowOut,
    summary="End a window now",
    responses=problems(
        s404="No maintenance window with this id.", s409="The window has already ended."
    ),
)
async def end_window(
    window_id: WindowId, body: EndWindow, principal: AdminPrincipal, windows: WindowsDep
) -> WindowOut:
    window = await windows.end(window_id, author=principal.name, reason=body.reason)
    _, events = await windows.get(window_id)
    return WindowOut.of(window, windows.clock(), events)
