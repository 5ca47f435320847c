"""The Prometheus scrape endpoint; gauges derived from live state are refreshed here."""

from __future__ import annotations

from fastapi import APIRouter, Request
from prometheus_client.exposition import choose_encoder
from starlette.responses import Response

from service.state import AppState, StateDep

router = APIRouter(tags=["metrics"])


def refresh_gauges(state: AppState) -> None:
    """Set the gauges that mirror state (thresholds, streams, models, rolling quantiles)."""
    metrics = state.metrics
    for name in state.thresholds.models():
        snapshot = state.thresholds.get(name)
        metrics.threshold.labels(name).set(snapshot.value)
        metrics.threshold_baseline.labels(name).set(snapshot.baseline)
        metrics.threshold_version.labels(name).set(snapshot.version)
        metrics.threshold_drift_ratio.labels(name).set(snapshot.drift_ratio)
    metrics.active_streams.set(len(state.streams))
    metrics.model_info.clear()
    for model in state.models.models():
        metrics.model_info.labels(
            model.name, model.version, str(model.window), str(model.manifest.n_sensors)
        ).set(1)
    for name, quantiles in state.pipeline.rolling_quantiles().items():
        for quantile, value in quantiles.items():
            metrics.error_quantile.labels(name, str(quantile)).set(value)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Exposition format."}},
)
async def metrics(request: Request, state: StateDep) -> Response:
    refresh_gauges(state)
    encoder, content_type = choose_encoder(request.headers.get("accept", ""))
    return Response(encoder(state.registry), media_type=content_type)
