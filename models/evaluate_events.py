"""Event-level part of ``models evaluate``: alerts by the service's rule on the normal and
the labelled run, against the labelled stretches, beside randomly placed alerts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from models.events import (
    AlertRule,
    EventFigures,
    StreamEvents,
    alert_starts,
    event_figures,
    first_alert_delay,
    median_step_seconds,
    random_window_hit,
    smooth,
    windows_from_labels,
)
from models.plots import Timeline
from models.report import Table


@dataclass(frozen=True)
class RunScores:
    """One run's scores (from its first full window on), its labels and kinds."""

    name: str
    normalised: np.ndarray
    """Score / threshold, in time order."""
    labels: np.ndarray
    kinds: np.ndarray
    timestamps: np.ndarray | None


@dataclass(frozen=True)
class EventEvaluation:
    figures: EventFigures
    tables: list[Table]
    timelines: list[Timeline]
    summary: dict[str, Any]


def evaluate_events(runs: list[RunScores], rule: AlertRule | None = None) -> EventEvaluation:
    rule = rule or AlertRule()
    streams: list[StreamEvents] = []
    timelines: list[Timeline] = []
    for run in runs:
        alerts = alert_starts(run.normalised, rule)
        windows = windows_from_labels(run.name, run.labels, run.kinds)
        streams.append(
            StreamEvents(
                run.name,
                run.normalised.size,
                alerts,
                windows,
                reading_seconds=median_step_seconds(run.timestamps),
                normal_readings=int(np.sum(~np.asarray(run.labels, dtype=bool))),
            )
        )
        timelines.append(
            Timeline(
                f"{run.name}: smoothed score / threshold ({alerts.size} alerts, "
                f"{len(windows)} labelled stretches)",
                smooth(run.normalised, rule),
                run.labels,
                alerts,
                f"score ({rule.describe().split(',')[0]})",
            )
        )
    figures = event_figures(streams)
    tables = [_summary_table(figures, streams, rule), _kind_table(streams)]
    return EventEvaluation(figures, tables, timelines, figures.as_dict())


def _summary_table(figures: EventFigures, streams: list[StreamEvents], rule: AlertRule) -> Table:
    normal_readings = sum(s.normal_readings for s in streams)
    false_alerts = sum(int(v["alerts_outside"]) for v in figures.per_stream.values())
    if figures.false_alerts_per_day is not None:
        false_rate = f"{figures.false_alerts_per_day:.2f} per day of normal operation"
    else:
        per = 10_000 * false_alerts / normal_readings if normal_readings else math.nan
        false_rate = f"{per:.2f} per 10,000 normal readings (no timestamps)"
    rows: list[list[Any]] = [
        [
            "labelled stretches with an alert inside",
            f"{figures.windows_alerted:.1%} of {figures.n_windows}",
            f"{figures.windows_alerted_random:.1%}",
        ],
        [
            "alerts starting outside every labelled stretch",
            f"{figures.alerts_outside:.1%} of {figures.n_alerts}",
            f"{figures.alerts_outside_random:.1%}",
        ],
        [
            "delay to the first alert (readings): median / mean",
            f"{figures.median_delay:g} / {figures.mean_delay:.1f}",
            f"mean {figures.delay_random:.1f}",
        ],
        ["false alerts", f"{false_alerts}: {false_rate}", "n/a"],
    ]
    return Table(
        title="Alerts (event level)",
        columns=["figure", "model", "random placement"],
        rows=rows,
        note=(
            f"Alerts by the service's default rule ({rule.describe()}) on the score divided "
            "by the threshold. A labelled stretch is a run of consecutive anomalous readings. "
            "Random placement: as many alerts per run as the model raised, placed uniformly "
            "at random over its scored readings (exact expectations)."
        ),
    )


def _kind_table(streams: list[StreamEvents]) -> Table:
    by_kind: dict[str, list[tuple[int | None, float]]] = {}
    for stream in streams:
        for window in stream.windows:
            delay = first_alert_delay(window, stream.alerts)
            chance = random_window_hit(stream.n_readings, window.length, stream.alerts.size)
            by_kind.setdefault(window.kind or "anomalous", []).append((delay, chance))
    rows: list[list[Any]] = []
    for kind, outcomes in sorted(by_kind.items()):
        delays = [d for d, _ in outcomes if d is not None]
        rows.append(
            [
                kind,
                len(outcomes),
                f"{len(delays) / len(outcomes):.0%}",
                f"{np.mean([c for _, c in outcomes]):.0%}",
                float(np.median(delays)) if delays else "n/a",
                max(delays) if delays else "n/a",
            ]
        )
    return Table(
        title="Detection delay per anomaly kind",
        columns=[
            "anomaly kind",
            "labelled stretches",
            "alerted",
            "alerted at random",
            "median delay (readings)",
            "longest delay",
        ],
        rows=rows,
        note="Delay: readings from a stretch's first reading to the first alert inside it.",
        digits={"median delay (readings)": 1},
    )
