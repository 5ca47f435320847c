"""Every Prometheus collector the service exposes, on one injected registry.

Names follow ``anomaly_<subsystem>_<name>_<unit>``. No label takes one value per stream:
labels are bounded by the set of loaded models, their sensors, endpoints and outcomes.
The Grafana dashboard and the alert rules in ``deploy/`` read exactly these names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

# Normalised score = error / current threshold; buckets are dense around 1 (the decision).
SCORE_BUCKETS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0, 100.0,
)  # fmt: skip
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip
ERROR_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)


def error_buckets(threshold: float) -> tuple[float, ...]:
    """Raw reconstruction-error buckets placed around a model's training threshold."""
    return tuple(round(threshold * factor, 12) for factor in SCORE_BUCKETS)


class BeforeCollect(Collector):
    """Exposes nothing; registered ahead of the service's collectors, so the registry runs
    its hooks before it reads them. The hot path keeps counts in plain Python numbers and
    these hooks move them into the collectors: every scrape (or ``get_sample_value``)
    sees exact counts."""

    def __init__(self) -> None:
        self.hooks: list[Callable[[], None]] = []

    def describe(self) -> Iterable[Metric]:
        return []

    def collect(self) -> Iterable[Metric]:
        for hook in self.hooks:
            hook()
        return []


class Metrics:
    """The service's collectors; build one per app with the registry it should report to.

    ``before_collect``: hooks that flush counts gathered outside the collectors; they run
    whenever the registry is read.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        error_bucket_bounds: Sequence[float] = SCORE_BUCKETS,
    ) -> None:
        self.registry = registry
        self.flusher = BeforeCollect()
        self.before_collect = self.flusher.hooks
        registry.register(self.flusher)  # first: collected before the collectors below
        ns = "anomaly"

        # --- HTTP -------------------------------------------------------------------
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests by route template, method and status code.",
            ["endpoint", "method", "status"],
            namespace=ns,
            registry=registry,
        )
        self.http_request_duration = Histogram(
            "http_request_duration_seconds",
            "Time to handle an HTTP request, by route template.",
            ["endpoint"],
            namespace=ns,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

        # --- scoring ----------------------------------------------------------------
        self.readings_scored = Counter(
            "readings_scored",
            "Readings scored (rejected requests are not counted).",
            ["model"],
            namespace=ns,
            registry=registry,
        )
        self.anomalies = Counter(
            "anomalies",
            "Readings whose reconstruction error exceeded the threshold (instantaneous flag).",
            ["model"],
            namespace=ns,
            registry=registry,
        )
        self.alerts = Counter(
            "alerts",
            "Alerts raised after debouncing (k of the last n smoothed scores, with cool-down).",
            ["model"],
            namespace=ns,
            registry=registry,
        )
        self.reconstruction_error = Histogram(
            "reconstruction_error",
            "Per-reading reconstruction error (mean squared error in standardised units).",
            ["model"],
            namespace=ns,
            buckets=tuple(error_bucket_bounds),
            registry=registry,
        )
        self.score = Histogram(
            "score",
            "Normalised score (reconstruction error / current threshold).",
            ["model"],
            namespace=ns,
            buckets=SCORE_BUCKETS,
            registry=registry,
        )
        self.error_quantile = Gauge(
            "reconstruction_error_quantile",
            "Rolling quantiles of recent reconstruction errors, computed in the service.",
            ["model", "quantile"],
            namespace=ns,
            registry=registry,
        )
        self.top_sensor = Counter(
            "top_sensor_contributions",
            "Anomalous readings in which this sensor contributed the largest share of the error.",
            ["model", "sensor"],
            namespace=ns,
            registry=registry,
        )
        self.model_info = Gauge(
            "model_info",
            "Loaded models (value 1), with version and input window.",
            ["model", "version", "window", "sensors"],
            namespace=ns,
            registry=registry,
        )

        # --- streams ----------------------------------------------------------------
        self.active_streams = Gauge(
            "active_streams",
            "Streams with smoothing state held in memory.",
            namespace=ns,
            registry=registry,
        )
        self.stream_evictions = Counter(
            "stream_evictions",
            "Stream states dropped, by reason (lru: capacity, ttl: idle).",
            ["reason"],
            namespace=ns,
            registry=registry,
        )

        # --- threshold and recalibration ----------------------------------------------
        self.threshold = Gauge(
            "threshold",
            "Threshold on the reconstruction error currently used for decisions.",
            ["model"],
            namespace=ns,
            registry=registry,
        )
        self.threshold_baseline = Gauge(
            "threshold_baseline",
            "Threshold set at training time (from the manifest).",
            ["model"],
            namespace=ns,
            registry=registry,
        )
        self.threshold_version = Gauge(
            "threshold_version",
            "Version number of the threshold currently in force.",
            ["model"],
            namespace=ns,
            registry=registry,
        )
        self.threshold_drift_ratio = Gauge(
            "threshold_drift_ratio",
            "Current threshold / training baseline - 1.",
            ["model"],
            namespace=ns,
            registry=registry,
        )
        self.threshold_pending = Gauge(
            "threshold_pending_approvals",
            "Candidate thresholds held for an admin's approval.",
            ["model"],
            namespace=ns,
            registry=registry,
        )
        self.recalibration_runs = Counter(
            "recalibration_runs",
            "Recalibration runs by outcome (applied, pending, unchanged, insufficient, failed).",
            ["model", "outcome"],
            namespace=ns,
            registry=registry,
        )
        self.last_recalibration = Gauge(
            "last_recalibration_timestamp_seconds",
            "Unix time of the last recalibration run.",
            ["model"],
            namespace=ns,
            registry=registry,
        )

        # --- feedback ---------------------------------------------------------------
        self.feedback = Counter(
            "feedback_labels",
            "Operator labels received, by label (normal, anomaly).",
            ["model", "label"],
            namespace=ns,
            registry=registry,
        )
        self.review_queue = Gauge(
            "review_queue_size",
            "Readings awaiting an operator's review (recent alerts plus the audit sample).",
            ["model"],
            namespace=ns,
            registry=registry,
        )

        # --- drift ------------------------------------------------------------------
        self.ks_statistic = Gauge(
            "drift_ks_statistic",
            "Two-sample KS statistic: reference calibration errors vs recent confirmed normals.",
            ["model"],
            namespace=ns,
            registry=registry,
        )
        self.ks_pvalue = Gauge(
            "drift_ks_pvalue",
            "p-value of the two-sample KS test on reconstruction errors.",
            ["model"],
            namespace=ns,
            registry=registry,
        )
        self.drift_sensors = Gauge(
            "drift_sensors_flagged",
            "Sensors whose error distribution drifted (Benjamini-Hochberg, minimum effect size).",
            ["model"],
            namespace=ns,
            registry=registry,
        )
        self.drift_recommendation = Gauge(
            "drift_recommendation",
            "1 for the drift status's current recommendation (none, recalibrate, retrain).",
            ["model", "recommendation"],
            namespace=ns,
            registry=registry,
        )
