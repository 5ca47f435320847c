"""Custom collectors (prometheus_client's documented pattern) for what the hot path counts
and for gauges that mirror live state.

The hot path adds to plain Python numbers held here, each tally written by one owner (the
request-metrics middleware, the scoring pipeline): a locked ``inc``/``observe`` per
request and per reading would cost more than the rest of its bookkeeping. The registry
reads the numbers when it is collected, so every scrape (or ``get_sample_value``) sees
exact counts. Names, labels and samples are those ``Counter``, ``Histogram`` and ``Gauge``
would expose. The gauges that mirror live state are in :mod:`service.gauges`.
"""

from __future__ import annotations

import math
import os
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import accumulate
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from service.scoring.rolling import RollingQuantiles

if TYPE_CHECKING:
    from service.scoring.registry import LoadedModel
    from service.scoring.scored import ScoredBatch

NAMESPACE = "anomaly"
_go_float: Callable[[float], str] = floatToGoString  # the "le" label, as Histogram writes it
ERROR_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)
# As prometheus_client decides whether its own collectors expose ``_created`` samples.
EXPOSE_CREATED = os.environ.get("PROMETHEUS_DISABLE_CREATED_SERIES", "False").lower() not in (
    "true",
    "1",
    "t",
)
# Below this many readings, Python loops beat numpy's per-call overhead.
_LOOP_MAX = 8
# Requests with this many readings go straight into the rolling quantiles; smaller ones
# are gathered until this many requests wait.
_QUANTILE_DIRECT = 64


def _counter(name: str, documentation: str, labels: Sequence[str]) -> CounterMetricFamily:
    return CounterMetricFamily(f"{NAMESPACE}_{name}", documentation, labels=labels)


def gauge_family(name: str, documentation: str, labels: Sequence[str] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{NAMESPACE}_{name}", documentation, labels=labels)


def _histogram(name: str, documentation: str, labels: Sequence[str]) -> HistogramMetricFamily:
    return HistogramMetricFamily(f"{NAMESPACE}_{name}", documentation, labels=labels)


def _add_count(
    family: CounterMetricFamily, labels: list[str], count: float, created: float
) -> None:
    family.add_metric(labels, float(count), created=created if EXPOSE_CREATED else None)


def add_counts(totals: list[int], indices: np.ndarray) -> None:
    """Add one to ``totals[i]`` for each ``i`` in ``indices``."""
    counts = np.bincount(indices, minlength=len(totals))
    for index in np.flatnonzero(counts).tolist():
        totals[index] += int(counts[index])


class HistogramCounts:
    """One histogram child's bucket counts and sum, as plain numbers."""

    __slots__ = ("bounds", "buckets", "created", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = [float(b) for b in bounds] + [math.inf]
        self.buckets = [0] * len(self.bounds)
        self.total = 0.0
        self.created = time.time()

    def observe(self, value: float) -> None:
        self.buckets[bisect_left(self.bounds, value)] += 1
        self.total += value

    def observe_many(self, values: np.ndarray) -> None:
        add_counts(self.buckets, np.searchsorted(self.bounds, values))
        self.total += float(values.sum())

    def add_to(self, family: HistogramMetricFamily, labels: list[str]) -> None:
        cumulative = accumulate(self.buckets)
        buckets = [(_go_float(b), float(c)) for b, c in zip(self.bounds, cumulative, strict=True)]
        family.add_metric(labels, buckets, self.total)
        if EXPOSE_CREATED:
            child = {k: v for k, v in family.samples[-1].labels.items() if k != "le"}
            family.samples.append(Sample(family.name + "_created", child, self.created))


class _RequestCounts:
    __slots__ = ("created", "duration", "served")

    def __init__(self, duration: HistogramCounts) -> None:
        self.served = 0
        self.created = time.time()
        self.duration = duration


class RequestTally(Collector):
    """HTTP requests by route template, method and status, and their durations by route
    template. Written by the request-metrics middleware alone."""

    def __init__(self, latency_bounds: Sequence[float]) -> None:
        self.latency_bounds = latency_bounds
        self._counts: dict[tuple[str, str, int], _RequestCounts] = {}
        self._durations: dict[str, HistogramCounts] = {}

    def add(self, endpoint: str, method: str, status: int, elapsed: float) -> None:
        counts = self._counts.get((endpoint, method, status))
        if counts is None:
            duration = self._durations.get(endpoint)
            if duration is None:
                duration = self._durations[endpoint] = HistogramCounts(self.latency_bounds)
            counts = self._counts[(endpoint, method, status)] = _RequestCounts(duration)
        counts.served += 1
        counts.duration.observe(elapsed)

    def collect(self) -> Iterator[Metric]:
        requests, durations = self.describe()
        for (endpoint, method, status), counts in list(self._counts.items()):
            _add_count(requests, [endpoint, method, str(status)], counts.served, counts.created)
        for endpoint, histogram in list(self._durations.items()):
            histogram.add_to(durations, [endpoint])
        yield requests
        yield durations

    def describe(self) -> tuple[CounterMetricFamily, HistogramMetricFamily]:
        return (
            _counter(
                "http_requests",
                "HTTP requests by route template, method and status code.",
                ["endpoint", "method", "status"],
            ),
            _histogram(
                "http_request_duration_seconds",
                "Time to handle an HTTP request, by route template.",
                ["endpoint"],
            ),
        )


class _ModelCounts:
    """One model name's counts (the label is the name: its versions share them)."""

    __slots__ = (
        "alerts",
        "anomalies",
        "created",
        "errors",
        "excluded",
        "glitched",
        "readings",
        "scores",
        "suppressed",
        "top",
    )

    def __init__(self, error_bounds: Sequence[float], score_bounds: Sequence[float]) -> None:
        self.readings = self.anomalies = self.alerts = self.suppressed = self.excluded = 0
        self.glitched = 0
        self.created = time.time()
        self.errors = HistogramCounts(error_bounds)
        self.scores = HistogramCounts(score_bounds)
        self.top: dict[str, list[float]] = {}  # sensor -> [count, created]


class _VersionSeries:
    """One model version's hot-path counts: its sensors' positions and rolling errors."""

    __slots__ = ("counts", "pending_errors", "quantiles", "top", "top_cells")

    def __init__(self, counts: _ModelCounts, model: LoadedModel, quantile_window: int) -> None:
        self.counts = counts
        now = time.time()
        self.top_cells = [counts.top.setdefault(s, [0, now]) for s in model.sensors]
        self.quantiles = RollingQuantiles(quantile_window, ERROR_QUANTILES)
        self.pending_errors: list[np.ndarray] = []

    def add(self, batch: ScoredBatch) -> None:
        counts = self.counts
        errors, scores, anomalies = batch.errors, batch.scores, batch.anomalies
        scored = len(errors)
        counts.readings += scored
        counts.alerts += batch.alerts_raised
        counts.glitched += batch.glitched
        if batch.maintenance is not None:
            counts.suppressed += batch.alerts_suppressed
            if batch.maintenance.excluded_by is not None:
                counts.excluded += len(batch)
        if scored < _LOOP_MAX:
            for error in errors.tolist():
                counts.errors.observe(error)
            for score in scores.tolist():
                counts.scores.observe(score)
            for row, flagged in enumerate(anomalies.tolist()):
                if flagged:
                    counts.anomalies += 1
                    self.top_cells[int(batch.top_index[row, 0])][0] += 1
        else:
            counts.errors.observe_many(errors)
            counts.scores.observe_many(scores)
            n_anomalies = int(anomalies.sum())
            if n_anomalies:
                counts.anomalies += n_anomalies
                top = [0] * len(self.top_cells)
                add_counts(top, batch.top_index[anomalies, 0])
                for cell, count in zip(self.top_cells, top, strict=True):
                    cell[0] += count
        if scored >= _QUANTILE_DIRECT:
            self.quantiles.add(errors)
        elif scored:
            self.pending_errors.append(errors)
            if len(self.pending_errors) >= _QUANTILE_DIRECT:
                self.flush_quantiles()

    def flush_quantiles(self) -> None:
        if self.pending_errors:
            self.quantiles.add(np.concatenate(self.pending_errors))
            self.pending_errors.clear()


class ScoringTally(Collector):
    """Readings scored, anomalies, alerts, error and score histograms, and top sensors, by
    model; fed one :class:`ScoredBatch` at a time by the scoring pipeline alone."""

    def __init__(
        self,
        error_bounds: Sequence[float],
        score_bounds: Sequence[float],
        quantile_window: int,
    ) -> None:
        self.error_bounds = error_bounds
        self.score_bounds = score_bounds
        self.quantile_window = quantile_window
        self._models: dict[str, _ModelCounts] = {}
        self._series: dict[tuple[str, str], _VersionSeries] = {}

    def add(self, batch: ScoredBatch) -> None:
        model = batch.model
        series = self._series.get((model.name, model.version))
        if series is None:
            series = self._new_series(model)
        series.add(batch)

    def _new_series(self, model: LoadedModel) -> _VersionSeries:
        counts = self._models.get(model.name)
        if counts is None:
            counts = _ModelCounts(self.error_bounds, self.score_bounds)
            self._models[model.name] = counts
        series = _VersionSeries(counts, model, self.quantile_window)
        self._series[(model.name, model.version)] = series
        return series

    def quantiles(self, served: Iterable[tuple[str, str]]) -> dict[str, dict[float, float]]:
        """Per served (name, version), by name: the rolling error quantiles (computed now,
        if stale)."""
        wanted = set(served)
        found: dict[str, dict[float, float]] = {}
        for (name, version), series in self._series.items():
            if (name, version) in wanted:
                series.flush_quantiles()
                found[name] = series.quantiles.compute()
        return found

    def collect(self) -> Iterator[Metric]:
        readings, anomalies, alerts, errors, scores, top, suppressed, excluded, glitched = (
            self.describe()
        )
        for name, counts in list(self._models.items()):
            _add_count(readings, [name], counts.readings, counts.created)
            _add_count(anomalies, [name], counts.anomalies, counts.created)
            _add_count(alerts, [name], counts.alerts, counts.created)
            _add_count(suppressed, [name], counts.suppressed, counts.created)
            _add_count(excluded, [name], counts.excluded, counts.created)
            _add_count(glitched, [name], counts.glitched, counts.created)
            counts.errors.add_to(errors, [name])
            counts.scores.add_to(scores, [name])
            for sensor, (count, created) in list(counts.top.items()):
                _add_count(top, [name, sensor], count, created)
        yield from (
            readings,
            anomalies,
            alerts,
            errors,
            scores,
            top,
            suppressed,
            excluded,
            glitched,
        )

    def describe(
        self,
    ) -> tuple[
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        HistogramMetricFamily,
        HistogramMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
        CounterMetricFamily,
    ]:
        model = ["model"]
        return (
            _counter(
                "readings_scored", "Readings scored (rejected requests are not counted).", model
            ),
            _counter(
                "anomalies",
                "Readings flagged: the score above the threshold, smoothed first for a model "
                "that declares its smoothing (its threshold was set on smoothed scores).",
                model,
            ),
            _counter(
                "alerts",
                "Alerts raised after debouncing (k of the last n smoothed scores, with cool-down).",
                model,
            ),
            _histogram(
                "reconstruction_error",
                "Per-reading reconstruction error (mean squared error in standardised units).",
                model,
            ),
            _histogram(
                "score", "Normalised score (reconstruction error / current threshold).", model
            ),
            _counter(
                "top_sensor_contributions",
                "Anomalous readings in which this sensor contributed the largest share of the "
                "error.",
                ["model", "sensor"],
            ),
            _counter(
                "alerts_suppressed",
                "Alerts a suppress_alerts maintenance window held back (not in anomaly_alerts).",
                model,
            ),
            _counter(
                "readings_excluded_from_learning",
                "Readings scored inside an exclude_from_learning maintenance window.",
                model,
            ),
            _counter(
                "glitched_readings",
                "Readings of a model with the glitch guard in which a sensor's value jumped "
                "from both raw neighbours, in the same direction, beyond its limit; the "
                "model's later windows hold it replaced by the neighbours' mean (counted when "
                "its successor comes).",
                model,
            ),
        )
