"""The application factory: builds every stateful object in the lifespan and wires routes.

``create_app`` has no side effects until the lifespan runs, so each test gets a fresh
app with its own settings and metrics registry.
"""

from __future__ import annotations

import asyncio
import copy
import gc
import logging
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import Depends, FastAPI
from fastapi.openapi.utils import get_openapi
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
)
from pydantic.json_schema import models_json_schema
from redis.asyncio import Redis

from service.api import (
    admin,
    admin_thresholds,
    drift,
    feedback,
    health,
    maintenance,
    models,
    review,
    score,
    streams,
)
from service.api import metrics as metrics_api
from service.api.console import install_console
from service.api.docs import install_offline_docs
from service.api.drain import DrainUnreadBodyMiddleware
from service.api.guard import RequestGuardMiddleware
from service.api.middleware import RequestMetricsMiddleware
from service.api.openapi import (
    document_access,
    document_readings,
    document_refusals,
    document_threshold_bounds,
)
from service.api.problems import install_problem_handlers
from service.calibration.drift_monitor import DriftMonitor
from service.calibration.keeper import ThresholdKeeper
from service.calibration.labelling import LabellingDesk
from service.calibration.maintenance import MaintenanceWindows
from service.calibration.recalibration import Recalibration
from service.calibration.recalibrator import RecalibrationLoop
from service.calibration.replicas import PostgresLink, ReplicaLink, SoloLink
from service.calibration.sql import SqlFeedbackStore
from service.calibration.store import StoreUnreachable
from service.environment import check_variables
from service.metrics import SCORE_BUCKETS, Metrics, error_buckets
from service.schemas import BulkScoreResponse, ScoreRequest, ScoreResponse
from service.scoring.batching import ReadingBatcher
from service.scoring.breaker import Breaker
from service.scoring.pipeline import ScoringPipeline
from service.scoring.recent import RecentReadings
from service.scoring.redis_streams import RedisStreamStore
from service.scoring.registry import ModelRegistry
from service.scoring.shared_readings import ReadingIndex, SharedReadings
from service.scoring.stream_store import LocalStreamStore, StreamStore
from service.scoring.streams import StreamStates
from service.security import build_keyring, require_scope
from service.settings import Settings
from service.state import AppState, ReadinessCheck
from service.store_probe import StoreProbe

logger = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """The service refuses to start (only with ``fail_fast_on_bad_artifact``)."""


def build_state(settings: Settings, registry: CollectorRegistry) -> AppState:
    """Every stateful object of one app, wired; the one place they are built. Nothing is
    started here: the lifespan restores thresholds and starts the background task."""
    torch.set_num_threads(settings.torch_threads)
    models = ModelRegistry(
        settings.models_dir,
        pinned_versions=settings.pinned_versions,
        default_model=settings.default_model,
    )
    problems = models.load_all()
    if problems and settings.fail_fast_on_bad_artifact:
        raise StartupError(
            "refusing to start: " + "; ".join(f"{k}: {v}" for k, v in problems.items())
        )
    # The error histogram's buckets sit around the default (else first) model's threshold.
    served = models.models()
    reference = models.get(None) if models.default_name else (served[0] if served else None)
    buckets = (
        error_buckets(reference.manifest.threshold.value)
        if reference is not None
        else SCORE_BUCKETS
    )
    metrics = Metrics(
        registry,
        error_bucket_bounds=buckets,
        quantile_window=settings.error_quantile_window,
    )

    def count_evictions(reason: str, count: int) -> None:
        metrics.stream_evictions.labels(reason).inc(count)

    streams = StreamStates(
        settings.stream_capacity,
        settings.stream_idle_ttl_s,
        on_evict=count_evictions,
        # Shared states carry when they were last seen to other replicas: wall time.
        clock=time.monotonic if settings.redis_url is None else time.time,
    )
    recent = RecentReadings(
        settings.recent_max_readings,
        settings.recent_retention_s,
        on_dropped=metrics.recent_dropped.labels("process").inc,
    )
    store = SqlFeedbackStore(settings.store_location)
    keeper = ThresholdKeeper(store=store, models=models, metrics=metrics, settings=settings)
    thresholds = keeper.board
    windows = MaintenanceWindows(store=store, models=models)
    pipeline = ScoringPipeline(
        settings, models, thresholds, streams, recent, metrics, windows=windows.match
    )
    stream_store, shared_readings = build_stream_store(settings, pipeline)
    metrics.state.watch(thresholds, streams, models)
    metrics.maintenance.watch(windows)
    metrics.show_zeros([model.name for model in models.models()])
    loop = RecalibrationLoop(
        interval_s=settings.recalibration_interval_s,
        label_trigger=settings.recalibration_label_trigger,
    )
    link: ReplicaLink
    if store.shared:
        # Every replica's labels reach every loop through the store's notifications,
        # this replica's own included: counted there, not also here.
        link = PostgresLink(
            store.url,
            poll_s=settings.store_poll_s,
            sync_thresholds=keeper.sync_from_store,
            labels_stored=loop.notify_labels,
            sync_windows=windows.restore,
            on_leading=metrics.recalibration_leader.set,
        )
    else:
        link = SoloLink(on_leading=metrics.recalibration_leader.set)
    desk = LabellingDesk(
        store=store,
        models=models,
        keeper=keeper,
        recent=recent,
        metrics=metrics,
        settings=settings,
        labels_stored=_ignore if store.shared else loop.notify_labels,
        shared=shared_readings,
        windows=windows.match,
    )
    drift_monitor = DriftMonitor(store=store, models=models, metrics=metrics, settings=settings)
    state = AppState(
        settings=settings,
        registry=registry,
        metrics=metrics,
        thresholds=thresholds,
        models=models,
        streams=streams,
        recent=recent,
        pipeline=pipeline,
        batcher=ReadingBatcher(stream_store),
        store=store,
        keeper=keeper,
        desk=desk,
        drift=drift_monitor,
        stream_store=stream_store,
        maintenance=windows,
        recalibration=Recalibration(
            store=store,
            models=models,
            recent=recent,
            keeper=keeper,
            drift=drift_monitor,
            desk=desk,
            settings=settings,
            link=link,
        ),
        recalibration_loop=loop,
        link=link,
    )

    async def models_loaded() -> str | None:
        if models.problems:
            return "; ".join(models.problems.values())
        if not models.models():
            return f"no model loaded from {settings.models_dir}"
        if models.default_name is None:
            # Every request that names no model would be refused.
            return models.no_default_reason()
        return None

    async def thresholds_present() -> str | None:
        missing = [m.name for m in models.models() if m.name not in thresholds]
        return f"no threshold for {', '.join(missing)}" if missing else None

    state.readiness.append(ReadinessCheck("models", models_loaded))
    state.readiness.append(ReadinessCheck("thresholds", thresholds_present))
    # A shared store down stops labels and threshold changes, not scoring (it goes on with
    # the thresholds in force), so the replica stays in the load balancer; the embedded
    # store is the process's own file, and its failure is the process's.
    state.readiness.append(ReadinessCheck("store", StoreProbe(store), blocking=not store.shared))
    state.readiness.append(ReadinessCheck("stream_state", stream_store.problem))
    return state


def _ignore(count: int) -> None:
    return None


async def restore_from_store(state: AppState) -> None:
    """Start-up reads of the store: thresholds, maintenance windows, drift. A shared store
    may be down while a replica starts: the replica then starts degraded, as a running one
    degrades (manifest thresholds, no maintenance window known, labels and admin 503), and
    its replica link catches up once the store answers."""
    shared = state.store.shared
    try:
        if await state.keeper.restore(tolerate_unreachable=shared):
            await state.maintenance.restore()
            await state.drift.check_all()
            return
    except StoreUnreachable:
        if not shared:
            raise
    logger.warning(
        "started without the feedback store: no maintenance window is known until it "
        "answers; /readyz names it under checks.store"
    )


def build_stream_store(
    settings: Settings, pipeline: ScoringPipeline
) -> tuple[StreamStore, SharedReadings | None]:
    """Where stream states and, for feedback, scored readings are shared: this process
    (no ``redis_url``), or Redis."""
    if settings.redis_url is None:
        return LocalStreamStore(pipeline), None
    client = Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
    )
    index = ReadingIndex(
        namespace="anomaly",
        retention_s=settings.recent_retention_s,
        max_readings=settings.recent_max_readings,
    )
    failures = pipeline.metrics.stream_state_failures

    def count_failure(reason: str) -> None:
        failures.labels(reason).inc()

    store = RedisStreamStore(
        pipeline,
        client,
        readings=index,
        idle_ttl_s=settings.stream_idle_ttl_s,
        on_failure=count_failure,
        on_dropped=pipeline.metrics.recent_dropped.labels("redis").inc,
        breaker=Breaker(settings.redis_breaker_s),
    )
    return store, SharedReadings(client, index=index, clock=time.time)


def create_app(
    settings: Settings | None = None, *, registry: CollectorRegistry | None = None
) -> FastAPI:
    """A new app; nothing is loaded until its lifespan starts."""
    if settings is None:  # read from the environment here (uvicorn's --factory)
        settings = Settings()
        check_variables(settings, os.environ)
    if registry is None:
        registry = CollectorRegistry()
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            registry.register(collector)
    metrics_registry = registry

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state = build_state(settings, metrics_registry)
        try:
            await restore_from_store(state)
        except BaseException:
            state.store.close()
            raise
        state.link.start()
        # Started whatever recalibration_enabled says: the same runs check drift and refresh
        # the review queue's gauge, which a deployment that sets thresholds by hand needs most.
        state.recalibration_loop.start(state.recalibration.run_scheduled)
        app.state.services = state
        # Objects built at start-up live forever: keep them out of GC passes (tail latency).
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            app.state.services = None
            await state.recalibration_loop.stop()
            await state.link.stop()
            await state.stream_store.close()
            await asyncio.to_thread(state.store.close)
            gc.unfreeze()
            state.metrics.unregister()

    app = FastAPI(
        title="Sensor anomaly service",
        summary="Real-time anomaly scores for industrial sensor readings.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # /docs and /redoc come from install_offline_docs: no CDN
        redoc_url=None,
        telemetry={
            "tracing": settings.opentelemetry,
            "metrics": settings.opentelemetry,
            "logs": settings.opentelemetry,
        },
    )
    app.state.services = None
    # Built here, not in the lifespan, so production mode without safe keys never starts.
    app.state.keyring = build_keyring(settings)
    app.state.settings = settings
    install_problem_handlers(app)
    # A key that may label or administer may also score what it labels.
    score_access = require_scope("score", "feedback", "admin", optional_unless="score_key_required")
    if not settings.opentelemetry:
        # Innermost: serves POST /v1/score itself; the route below documents it in OpenAPI
        # (and serves it when FastAPI traces requests, so spans carry the route).
        app.add_middleware(score.LeanScoreMiddleware, access=score_access)
    always_keyed = (
        admin.router.prefix,
        feedback.router.prefix,
        drift.router.prefix,
        maintenance.router.prefix,
        review.whoami_router.prefix,
    )
    app.add_middleware(
        RequestGuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        keyring=app.state.keyring,
        protected_prefixes=always_keyed,
        own_limit_paths=frozenset({score.router.prefix + "/score"}),  # checks its own
    )
    app.add_middleware(RequestMetricsMiddleware)  # counts the guard's refusals too
    # Outermost: whichever layer refused a request, its unread body is drained after the
    # request is counted, before the reply completes.
    app.add_middleware(
        DrainUnreadBodyMiddleware,
        max_bytes=settings.refused_body_drain_bytes,
        timeout_s=settings.refused_body_drain_s,
    )
    scoring_access = [Depends(score_access)]
    app.include_router(score.router, dependencies=scoring_access)
    app.include_router(models.router, dependencies=scoring_access)
    app.include_router(streams.router, dependencies=scoring_access)
    app.include_router(admin.router, dependencies=[Depends(require_scope("admin"))])
    app.include_router(feedback.router)
    app.include_router(admin_thresholds.router)
    app.include_router(drift.router)
    app.include_router(maintenance.router)
    app.include_router(review.router)
    app.include_router(review.whoami_router)
    app.include_router(health.router)
    app.include_router(metrics_api.router)
    install_offline_docs(app)
    install_console(app)
    _document(app, settings, json_only_prefixes=always_keyed)
    return app


def _document(app: FastAPI, settings: Settings, *, json_only_prefixes: tuple[str, ...]) -> None:
    """The OpenAPI document: the schemas of hand-parsed bodies, access and refusals, and for
    the models being served, scoring examples and the hand-set threshold's bounds."""
    documented: dict[tuple[Any, ...], dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        schema = generic()
        state: AppState | None = app.state.services
        if state is None or not (served := state.models.models()):
            return schema
        default = state.models.default_name
        model = next((m for m in served if m.name == default), served[0])
        key = (default, *((m.name, m.version) for m in served))
        if key not in documented:
            documented.clear()  # one served set at a time; a reload makes a new one
            specific = copy.deepcopy(schema)
            body = specific["paths"][score.SCORE_PATH]["post"]["requestBody"]
            body["content"]["application/json"]["examples"] = score.request_examples(
                model, name_model=default is None
            )
            document_readings(specific, served)
            document_threshold_bounds(specific, state.thresholds, [m.name for m in served])
            documented[key] = specific
        return documented[key]

    def generic() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            summary=app.summary,
            description=app.description,
            routes=app.routes,
        )
        _, defs = models_json_schema(
            [(m, "validation") for m in (ScoreRequest, ScoreResponse, BulkScoreResponse)],
            ref_template="#/components/schemas/{model}",
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for name, definition in defs.get("$defs", {}).items():
            components.setdefault(name, definition)
        document_access(schema, app.routes, settings)
        document_refusals(schema, json_only_prefixes=json_only_prefixes)
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
