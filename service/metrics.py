"""Every Prometheus collector the service exposes, on one injected registry.

Names follow ``anomaly_<subsystem>_<name>_<unit>``. No label takes one value per stream:
labels are bounded by the set of loaded models, their sensors, endpoints and outcomes.
The Grafana dashboard and the alert rules in ``deploy/`` read exactly these names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics import MetricWrapperBase

from service.calibration.records import LabelValue, RunOutcome
from service.collectors import RequestTally, ScoringTally
from service.gauges import MaintenanceGauges, StateGauges

# Normalised score = error / current threshold; buckets are dense around 1 (the decision).
SCORE_BUCKETS: tuple[float, ...] = (
    0.1, 0.25, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0, 100.0,
)  # fmt: skip
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
)  # fmt: skip


def error_buckets(threshold: float) -> tuple[float, ...]:
    """Raw reconstruction-error buckets placed around a model's training threshold."""
    return tuple(round(threshold * factor, 12) for factor in SCORE_BUCKETS)


EVICTION_REASONS = ("lru", "ttl")  # service/scoring/streams.py: capacity, idle
# service/scoring/redis_streams.py: down or refusing connections, slower than the timeout,
# at maxmemory (noeviction refuses writes), any other error, refused at once after a timeout
STREAM_STATE_FAILURES = ("unreachable", "timeout", "full", "refused", "breaker_open")
RECENT_STORES = ("process", "redis")  # service/scoring/recent.py, shared_readings.py
RECALIBRATION_OUTCOMES: tuple[str, ...] = get_args(RunOutcome)
LABELS: tuple[str, ...] = get_args(LabelValue)


class Metrics:
    """The service's collectors; build one per app with the registry it should report to.

    Three are custom collectors (``service.collectors``), each with one writer:
    ``requests`` (the request-metrics middleware), ``scoring`` (the scoring pipeline) and
    ``state``, which reads the thresholds, streams and models it is told to ``watch`` at
    collect time. The rest are plain prometheus_client collectors.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        error_bucket_bounds: Sequence[float] = SCORE_BUCKETS,
        quantile_window: int = 10_000,
    ) -> None:
        self.registry = registry
        ns = "anomaly"

        self.requests = RequestTally(LATENCY_BUCKETS)
        self.scoring = ScoringTally(error_bucket_bounds, SCORE_BUCKETS, quantile_window)
        self.state = StateGauges(self.scoring)
        self.maintenance = MaintenanceGauges()
        for collector in (self.requests, self.scoring, self.state, self.maintenance):
            registry.register(collector)

        # --- streams ----------------------------------------------------------------
        self.stream_evictions = Counter(
            "stream_evictions",
            "Stream states dropped, by reason (lru: capacity, ttl: idle).",
            ["reason"],
            namespace=ns,
            registry=registry,
        )

        # --- readings kept for labels by id ------------------------------------------
        self.recent_dropped = Counter(
            "recent_readings_dropped",
            "Scored readings let go before their retention ended, to stay within "
            "ANOMALY_RECENT_MAX_READINGS, by store (process: this replica's, for the review "
            "queue, stream views, labels by time and, without Redis, by id; redis: every "
            "replica's together, for labels by id).",
            ["store"],
            namespace=ns,
            registry=registry,
        )

        # --- readiness ----------------------------------------------------------------
        # Set by each /readyz (the orchestrator's probe), so a series appears with the first
        # probe: a process nobody probes reports none rather than a made-up value.
        self.readiness_failing = Gauge(
            "readiness_failing",
            "1 while the check failed at the last /readyz, else 0; blocking: whether it takes "
            "the replica out of service (a shared store's check does not).",
            ["check", "blocking"],
            namespace=ns,
            registry=registry,
        )
        self.readiness_probed = Gauge(
            "readiness_probed_timestamp_seconds",
            "Unix time of the last /readyz (0: never probed): how fresh "
            "anomaly_readiness_failing is.",
            namespace=ns,
            registry=registry,
        )

        # --- threshold and recalibration ----------------------------------------------
        self.stream_state_failures = Counter(
            "stream_state_failures",
            "Writes of shared stream state (Redis) that failed, each answered 503, by reason "
            "(unreachable, timeout, full: maxmemory reached, refused: another error).",
            ["reason"],
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
        self.recalibration_leader = Gauge(
            "recalibration_leader",
            "1 while this replica leads recalibration (holds the store's leader lock; a "
            "single process with the embedded store always does), else 0.",
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
            "Readings the review queue lists for an operator's label: at most "
            "ANOMALY_REVIEW_ALERT_LIMIT unlabelled alerts plus the audit sample, of this "
            "replica's retained readings; when the queue's more_alerts is true, more alerts "
            "wait beyond it. Set when the queue is read (the console, every background run).",
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

    def show_zeros(self, models: Sequence[str]) -> None:
        """Counters with labels start at 0 for their known label values, so a fresh
        deployment's dashboard shows 0, not "No data", before the first event."""
        for reason in EVICTION_REASONS:
            self.stream_evictions.labels(reason)
        for reason in STREAM_STATE_FAILURES:
            self.stream_state_failures.labels(reason)
        for store in RECENT_STORES:
            self.recent_dropped.labels(store)
        for model in models:
            for outcome in RECALIBRATION_OUTCOMES:
                self.recalibration_runs.labels(model, outcome)
            for label in LABELS:
                self.feedback.labels(model, label)

    def unregister(self) -> None:
        """Take every collector built here off the registry (the app shuts down)."""
        for collector in vars(self).values():
            if isinstance(
                collector,
                MetricWrapperBase | RequestTally | ScoringTally | StateGauges | MaintenanceGauges,
            ):
                self.registry.unregister(collector)
