"""NAB realKnownCause (univariate), event level: do alerts land in the labelled windows?

Per series, the model is trained with the given settings on NAB's probationary period (the
first 15% of the readings, which NAB never scores) and keeps the threshold ``train`` gives a
run without calibration data (out of time: each half of the period scored by a model trained
on the other half, models/out_of_time.py). The rest is scored in file order and alerts are
raised by the service's rule (:class:`models.events.AlertRule`, default settings).
Reported, each beside alerts placed uniformly at random (as many per series as the model
raised): the share of labelled windows with an alert inside, the share of alerts starting
outside every window, the detection delay and false alerts per day. The PCA baseline (with
one sensor, T² is the squared z-score; SPE is always zero) goes through the same rule with its
limit at the same quantile of the tail of the period (with a short period, about its largest
value).
"""

from __future__ import annotations

import csv
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.benchmarks.common import (
    SELECTED_SETTINGS,
    BenchmarkDataMissing,
    DetectorSet,
    describe_settings,
    model_label,
    progress_printer,
    require,
    shown,
    train_as_default,
)
from models.data import load_readings
from models.events import (
    AlertRule,
    EventFigures,
    LabelledWindow,
    StreamEvents,
    alert_starts,
    event_figures,
    median_step_seconds,
)
from models.readings import DataError
from models.report import EvaluationReport, Table, write_report
from models.threshold import DegenerateCalibration
from models.train_config import TrainConfig

NAB_CORPUS = "realKnownCause"
NAB_WINDOWS_FILE = "labels/combined_windows.json"
NAB_PROBATION = 0.15
"""NAB's probationary share: the first 15% of a series is never scored."""
NAB_QUANTILE = 0.99
NAB_DETECTORS = ("autoencoder", "pca_t2")


@dataclass(frozen=True)
class NabSeries:
    name: str
    values: np.ndarray  # (n, 1)
    timestamps: np.ndarray  # datetime64, file order
    windows: list[tuple[np.datetime64, np.datetime64]]


def _timestamps(path: Path) -> np.ndarray:
    """The timestamp column as written: NAB scores in file order, and one series
    (machine_temperature) has a timestamp earlier than the one before it."""
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    try:
        return np.array([row[0].replace(" ", "T") for row in rows[1:]], dtype="datetime64[s]")
    except ValueError as exc:
        raise DataError(path, f"unreadable timestamp ({exc})", column="timestamp") from None


def load_nab(data_dir: Path) -> list[NabSeries]:
    folder = require(data_dir / "nab", "NAB data folder")
    labels_path = require(folder / NAB_WINDOWS_FILE, "NAB windows file")
    try:
        windows = json.loads(labels_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DataError(labels_path, f"not JSON ({exc})") from None
    corpus = require(folder / "data" / NAB_CORPUS, f"NAB {NAB_CORPUS} folder")
    paths = sorted(corpus.glob("*.csv"))
    if not paths:
        raise BenchmarkDataMissing(f"no CSV files in {corpus}")
    series = []
    for path in paths:
        key = f"{NAB_CORPUS}/{path.name}"
        if key not in windows:
            raise DataError(labels_path, f"no windows for {key}")
        readings = load_readings(path, drop_columns=["timestamp"])
        if readings.n_sensors != 1:
            raise DataError(path, f"{readings.n_sensors} value columns, expected 1")
        stamps = _timestamps(path)
        if len(stamps) != readings.n_readings:
            raise DataError(path, f"{len(stamps)} timestamps for {readings.n_readings} readings")
        spans = [
            (np.datetime64(a.replace(" ", "T"), "s"), np.datetime64(b.replace(" ", "T"), "s"))
            for a, b in windows[key]
        ]
        series.append(NabSeries(path.stem, readings.values, stamps, spans))
    return series


def window_indices(series: NabSeries, first_scored: int) -> tuple[list[LabelledWindow], list[str]]:
    """Labelled windows as index ranges of the scored readings (those from
    ``first_scored`` on); a window that starts before them is left out and named."""
    stamps = series.timestamps
    out: list[LabelledWindow] = []
    dropped: list[str] = []
    for begin, end in series.windows:
        inside = np.flatnonzero((stamps >= begin) & (stamps <= end))
        if inside.size == 0:
            continue
        start, stop = int(inside.min()), int(inside.max()) + 1
        if start < first_scored:
            dropped.append(f"{series.name} window from {begin} (in the probationary period)")
            continue
        out.append(LabelledWindow(series.name, start - first_scored, stop - first_scored))
    return out, dropped


@dataclass
class NabBenchmark:
    rule: AlertRule
    figures: dict[str, EventFigures]
    per_series: dict[str, dict[str, Any]]
    config: TrainConfig
    notes: list[str]

    def summary(self) -> dict[str, Any]:
        return {name: figures.as_dict() for name, figures in self.figures.items()}


def run_nab(
    data_dir: Path,
    config: TrainConfig | None = None,
    *,
    rule: AlertRule | None = None,
    verbose: bool = True,
    max_series: int | None = None,
    select_model: bool = False,
) -> NabBenchmark:
    """``max_series`` runs the first series only (a quick check, not the benchmark)."""
    # A trained model declares its smoothing and its scores come smoothed (models/scores.py):
    # the service debounces them without smoothing again.
    rule = rule or AlertRule(smoothing="none")
    config = replace(config or TrainConfig(), quantile=NAB_QUANTILE)
    streams: dict[str, list[StreamEvents]] = {name: [] for name in NAB_DETECTORS}
    per_series: dict[str, dict[str, Any]] = {}
    notes: list[str] = []
    for series in load_nab(data_dir)[:max_series]:
        n = len(series.values)
        probation = int(NAB_PROBATION * n)
        head = series.values[:probation]
        try:
            result = train_as_default(
                head,
                ["value"],
                config,
                select_model=select_model,
                calibration_source=f"{series.name} tail of the probationary period",
                progress=progress_printer(f"nab {series.name}") if verbose else None,
            )
        except DegenerateCalibration as exc:
            # What a user would meet: train refuses a threshold from a flat calibration tail.
            notes.append(f"Not scored: {series.name}: train refuses it ({exc}).")
            per_series[series.name] = {"readings": n, "refused": str(exc)}
            continue
        start, stop = result.splits["calibration"]
        detectors = DetectorSet.build(
            result,
            head,
            head[start:stop],
            quantile=NAB_QUANTILE,
            calibration_source="tail of the probationary period",
            own_threshold=True,
        )
        context = result.window - 1
        scores = detectors.scores(series.values[probation - context :])
        windows, dropped = window_indices(series, probation)
        notes += [f"Left out: {text}." for text in dropped]
        step = median_step_seconds(series.timestamps)
        covered = np.zeros(n - probation, dtype=bool)
        for window in windows:
            covered[window.start : window.stop] = True
        per_series[series.name] = {
            "readings": n,
            "probation": probation,
            "windows": len(windows),
            "model": model_label(result),
            "threshold": float(detectors.limits["autoencoder"]),
            "threshold_warning": result.threshold.warning,
        }
        for name in NAB_DETECTORS:
            alerts = alert_starts(scores[name] / detectors.limits[name], rule)
            streams[name].append(
                StreamEvents(
                    series.name,
                    n - probation,
                    alerts,
                    windows,
                    reading_seconds=step,
                    normal_readings=int(np.sum(~covered)),
                )
            )
            per_series[series.name][f"{name}_alerts"] = int(alerts.size)
        if verbose:
            print(
                f"  [nab] {series.name}: {per_series[series.name]['autoencoder_alerts']} alerts, "
                f"{len(windows)} windows",
                file=sys.stderr,
            )
        if result.threshold.warning:
            notes.append(f"{series.name} threshold: {result.threshold.warning}")
    figures = {name: event_figures(streams[name]) for name in NAB_DETECTORS}
    return NabBenchmark(rule, figures, per_series, config, notes)


def describe_nab_rule(rule: AlertRule) -> str:
    """The rule in words: each model's scores arrive smoothed as it declares, so a rule
    without smoothing of its own is no "no smoothing" for the model.

    >>> describe_nab_rule(AlertRule(smoothing="none")).split(", then ")[0]
    "each model's scores smoothed as it declares (PCA-T²: not smoothed)"
    """
    if rule.smoothing != "none":
        return rule.describe()
    return (
        "each model's scores smoothed as it declares (PCA-T²: not smoothed), then "
        f"{rule.k} of {rule.n} above the threshold, cool-down {rule.cooldown}"
    )


def nab_table(bench: NabBenchmark) -> Table:
    rows: list[list[Any]] = []
    for name, f in bench.figures.items():
        rows.append(
            [
                shown(name),
                f.n_alerts,
                f"{f.windows_alerted:.0%} ({f.windows_alerted_random:.0%})",
                f"{f.alerts_outside:.0%} ({f.alerts_outside_random:.0%})",
                f"{f.median_delay:g} / {f.mean_delay:.1f} ({f.delay_random:.1f})",
                "n/a" if f.false_alerts_per_day is None else f.false_alerts_per_day,
            ]
        )
    n_windows = next(iter(bench.figures.values())).n_windows
    refused = [name for name, info in bench.per_series.items() if "refused" in info]
    scored = len(bench.per_series) - len(refused)
    left_out = (
        f" (not scored: {', '.join(refused)}, which train refuses; its windows are not counted)"
        if refused
        else ""
    )
    return Table(
        title=f"NAB {NAB_CORPUS}: {n_windows} labelled windows of the {scored} series scored"
        f"{left_out}, alerts by the service's rule",
        columns=[
            "detector",
            "alerts",
            "windows alerted (random)",
            "alerts outside windows (random)",
            "delay, readings: median / mean (random mean)",
            "false alerts per day",
        ],
        rows=rows,
        note=(
            f"Rule: {describe_nab_rule(bench.rule)}. In brackets: the same number of alerts "
            "per series placed uniformly at random over its scored readings (exact "
            "expectations). Delay: from a window's start to the first alert inside it, over "
            "alerted windows. False alerts per day: alerts outside every window per day of "
            "readings outside them. Limits: our model's is the out-of-time threshold train "
            "sets on the probationary period; PCA-T²'s the same quantile of that period's "
            "tail (with a short period, about its largest value)."
        ),
        digits={"false alerts per day": 2},
    )


def nab_series_table(bench: NabBenchmark) -> Table:
    rows = []
    for name, info in bench.per_series.items():
        if "refused" in info:  # not scored: said in the notes
            continue
        stats = bench.figures["autoencoder"].per_stream[name]
        rows.append(
            [
                name,
                info["model"],
                info["threshold"],
                info["readings"],
                info["probation"],
                info["windows"],
                int(stats["windows_alerted"]),
                int(stats["alerts"]),
                int(stats["alerts_outside"]),
                info["pca_t2_alerts"],
            ]
        )
    return Table(
        title="NAB per series (our model: as train chose it on the probationary period)",
        columns=[
            "series",
            "model",
            "threshold",
            "readings",
            "probationary (training)",
            "windows",
            "windows alerted",
            "alerts",
            "alerts outside",
            "PCA-T² alerts",
        ],
        rows=rows,
        digits={"threshold": 4},
    )


def write_nab_report(
    bench: NabBenchmark, out_dir: Path, *, selected: bool = False
) -> dict[str, Path]:
    """``selected``: the models were chosen as ``train`` chooses by default (per series)."""
    report = EvaluationReport(
        title=f"NAB benchmark ({NAB_CORPUS}, event level)",
        context={
            "protocol": f"per series: train on the first {NAB_PROBATION:.0%} (NAB's probationary "
            "period), score the rest in file order, alerts by the service's rule",
            "training settings": SELECTED_SETTINGS
            if selected
            else describe_settings(bench.config, quantile=NAB_QUANTILE),
            "alert rule": describe_nab_rule(bench.rule),
            "summary": bench.summary(),
        },
        detectors=[],
        tables=[nab_table(bench), nab_series_table(bench)],
        notes=bench.notes,
    )
    return write_report(report, out_dir)
