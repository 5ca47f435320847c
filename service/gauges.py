"""Gauges that mirror live state (prometheus_client's custom-collector pattern): read from
their owners at collect time, so nothing has to remember to set them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from service.collectors import ScoringTally, gauge_family

if TYPE_CHECKING:
    from service.calibration.maintenance import MaintenanceWindows
    from service.scoring.registry import ModelRegistry
    from service.scoring.streams import StreamStates
    from service.scoring.thresholds import ThresholdBoard


class StateGauges(Collector):
    """Gauges that mirror live state, read from their owners at collect time: the rolling
    error quantiles, the loaded models, the streams held, the thresholds in force."""

    def __init__(self, tally: ScoringTally) -> None:
        self.tally = tally
        self._thresholds: ThresholdBoard | None = None
        self._streams: StreamStates | None = None
        self._models: ModelRegistry | None = None

    def watch(
        self, thresholds: ThresholdBoard, streams: StreamStates, models: ModelRegistry
    ) -> None:
        self._thresholds, self._streams, self._models = thresholds, streams, models

    def collect(self) -> Iterator[Metric]:
        quantiles, info, streams, value, baseline, version, drift, refused = self.describe()
        if self._models is not None:
            served = self._models.models()
            for name, found in self.tally.quantiles((m.name, m.version) for m in served).items():
                for quantile, number in found.items():
                    quantiles.add_metric([name, str(quantile)], number)
            for m in served:
                labels = [m.name, m.version, str(m.window), str(m.manifest.n_sensors)]
                info.add_metric(labels, 1.0)
                count = sum(1 for key in self._models.refused if key.split("/", 1)[0] == m.name)
                refused.add_metric([m.name], float(count))
        if self._streams is not None:
            streams.add_metric([], float(len(self._streams)))
        if self._thresholds is not None:
            board = self._thresholds
            for name in board.models():
                snapshot = board.get(name)
                value.add_metric([name], snapshot.value)
                baseline.add_metric([name], snapshot.baseline)
                version.add_metric([name], float(snapshot.version))
                drift.add_metric([name], snapshot.drift_ratio)
        yield from (quantiles, info, streams, value, baseline, version, drift, refused)

    def describe(self) -> tuple[GaugeMetricFamily, ...]:
        model = ["model"]
        return (
            gauge_family(
                "reconstruction_error_quantile",
                "Rolling quantiles of recent reconstruction errors, computed in the service.",
                ["model", "quantile"],
            ),
            gauge_family(
                "model_info",
                "Loaded models (value 1), with version and input window.",
                ["model", "version", "window", "sensors"],
            ),
            gauge_family("active_streams", "Streams with smoothing state held in memory."),
            gauge_family(
                "threshold",
                "Threshold on the reconstruction error currently used for decisions.",
                model,
            ),
            gauge_family(
                "threshold_baseline", "Threshold set at training time (from the manifest).", model
            ),
            gauge_family(
                "threshold_version", "Version number of the threshold currently in force.", model
            ),
            gauge_family(
                "threshold_drift_ratio", "Current threshold / training baseline - 1.", model
            ),
            gauge_family(
                "model_versions_refused",
                "Newer versions of a served model refused at start-up (an older good one "
                "serves); /readyz and /v1/models say why.",
                model,
            ),
        )


class MaintenanceGauges(Collector):
    """Maintenance windows in force, by mode, read from their owner at collect time (a
    window starts and ends by the clock, with no event to set a gauge on)."""

    MODES = ("suppress_alerts", "exclude_from_learning")

    def __init__(self) -> None:
        self._windows: MaintenanceWindows | None = None

    def watch(self, windows: MaintenanceWindows) -> None:
        self._windows = windows

    def collect(self) -> Iterator[Metric]:
        (active,) = self.describe()
        found = self._windows.active() if self._windows is not None else []
        for mode in self.MODES:
            count = sum(1 for w in found if getattr(w, mode))
            active.add_metric([mode], float(count))
        yield active

    def describe(self) -> tuple[GaugeMetricFamily]:
        return (
            gauge_family(
                "maintenance_windows_active",
                "Maintenance windows in force now, by mode (suppress_alerts, "
                "exclude_from_learning).",
                ["mode"],
            ),
        )
