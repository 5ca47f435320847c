"""Liveness (the process answers) and readiness (every registered check passes)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from starlette.responses import Response

from service.errors import PROBLEM_CONTENT_TYPE, problem_body
from service.schemas import Liveness, Problem, Readiness
from service.state import StateDep

router = APIRouter(tags=["health"])

_ALIVE = orjson.dumps({"status": "alive"})


@router.get("/healthz", response_model=Liveness, summary="Liveness: the process answers")
async def healthz() -> Response:
    return Response(_ALIVE, media_type="application/json")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: models loaded, thresholds present, dependencies reachable",
    responses={503: {"model": Problem, "description": "Not ready; `checks` says why."}},
)
async def readyz(state: StateDep) -> Response:
    results = await state.not_ready_reasons()
    checks = {name: reason or "ok" for name, reason in results.items()}
    blocking = {check.name for check in state.readiness if check.blocking}
    for name, reason in results.items():
        # what Prometheus alerts on where readiness takes a replica out of the balancer
        # unseen (Kubernetes: no request reaches it, so no error is counted)
        gauge = state.metrics.readiness_failing.labels(name, str(name in blocking).lower())
        gauge.set(1.0 if reason else 0.0)
    state.metrics.readiness_probed.set_to_current_time()
    failing = {name: reason for name, reason in results.items() if reason and name in blocking}
    refused = dict(state.models.refused)
    details = state.details()
    if not failing:
        return Response(
            orjson.dumps(
                {
                    "status": "ready",
                    "checks": checks,
                    "refused_artifacts": refused,
                    "details": details,
                }
            ),
            media_type="application/json",
        )
    body = problem_body(
        status=503,
        slug="not-ready",
        title="Service not ready",
        detail="; ".join(f"{name}: {reason}" for name, reason in failing.items()),
        instance="/readyz",
    )
    body["checks"] = checks
    body["refused_artifacts"] = refused
    body["details"] = details
    return Response(orjson.dumps(body), status_code=503, media_type=PROBLEM_CONTENT_TYPE)
