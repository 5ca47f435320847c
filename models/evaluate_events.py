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
from models.report import Table, percent


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


def smoothing_phrase(rule: AlertRule, declared: str | None) -> str:
    """Whose smoothing the scores went through before the alert rule: the model's declared
    one (already applied to its scores, so the rule adds none) or, for a model that declares
    none, the service's.

    >>> smoothing_phrase(AlertRule(smoothing="none"), "ewma:0.3")
    'ewma:0.3 as the model declares'
    >>> smoothing_phrase(AlertRule(), None)
    "rolling median of 3 (the service's default for a model that declares no smoothing)"
    """
    if declared == "none":
        return "no smoothing, as the model declares"
    if declared is not None:
        return f"{declared} as the model declares"
    own = rule.describe().split(",")[0]
    return f"{own} (the service's default for a model that declares no smoothing)"


def describe_rule(rule: AlertRule, declared: str | None) -> str:
    """The whole rule in words, its smoothing named for whose it is."""
    return (
        f"{smoothing_phrase(rule, declared)}, then {rule.k} of {rule.n} above the threshold, "
        f"cool-down {rule.cooldown}"
    )


def evaluate_events(
    runs: list[RunScores], rule: AlertRule | None = None, *, declared: str | None = None
) -> EventEvaluation:
    """``declared``: the label of the smoothing the model declares (its scores in ``runs``
    already went through it), None when it declares none."""
    rule = rule or AlertRule()
    smoothed = declared not in (None, "none") or (declared is None and rule.smoothing != "none")
    score = "smoothed score" if smoothed else "score"
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
                f"{run.name}: {score} / threshold ({alerts.size} alerts, "
                f"{len(windows)} labelled stretches)",
                smooth(run.normalised, rule),
                run.labels,
                alerts,
                f"score ({smoothing_phrase(rule, declared)})",
            )
        )
    figures = event_figures(streams)
    described = describe_rule(rule, declared)
    summary: dict[str, Any] = {"rule": described, **figures.as_dict()}
    summary["message"] = f"{summary_sentence(summary)} ({described})"
    informative = not figures.n_alerts or beats_random(summary)
    numbers = any(run.timestamps is not None and run.timestamps.dtype.kind == "f" for run in runs)
    tables = [
        _summary_table(figures, streams, described, informative, numbers),
        _kind_table(streams),
    ]
    return EventEvaluation(figures, tables, timelines, summary)


def _summary_table(
    figures: EventFigures,
    streams: list[StreamEvents],
    rule: str,
    informative: bool,
    numeric_times: bool = False,
) -> Table:
    """``numeric_times``: a run's timestamps are numbers, read as seconds (said beside the
    rate, which milliseconds would put a thousand times too low)."""
    false_alerts, expected = figures.false_alerts, figures.false_alerts_random
    if figures.false_alerts_per_day is not None:
        false_rate = f"{figures.false_alerts_per_day:.2f} per day of normal operation" + (
            " (numeric timestamps read as seconds)" if numeric_times else ""
        )
        random_rate = f"{figures.false_alerts_per_day_random or 0.0:.2f} per day"
    else:
        false_rate = (
            f"{figures.false_alerts_per_10k:.2f} per 10,000 normal readings (no timestamps)"
        )
        random_rate = f"{figures.false_alerts_per_10k_random:.2f} per 10,000 normal readings"
    if figures.delays:
        delay = f"{figures.median_delay:g} / {figures.mean_delay:.1f}"
    else:
        delay = "no alert inside a labelled stretch"
    random_delay = figures.delay_random
    rows: list[list[Any]] = [
        [
            "labelled stretches with an alert inside",
            _share_of(figures.windows_alerted, figures.n_windows, "no labelled stretches"),
            percent(figures.windows_alerted_random),
        ],
        [
            "alerts starting outside every labelled stretch",
            _share_of(figures.alerts_outside, figures.n_alerts, "no alerts"),
            percent(figures.alerts_outside_random),
        ],
        [
            "delay to the first alert (readings): median / mean",
            delay,
            f"mean {random_delay:.1f}" if math.isfinite(random_delay) else "n/a",
        ],
        ["false alerts", f"{false_alerts}: {false_rate}", f"{expected:.1f}: {random_rate}"],
    ]
    return Table(
        title="Alerts (event level)",
        columns=["figure", "model", "random placement"],
        rows=rows,
        note=(
            f"Alerts by the service's rule ({rule}) on the score divided by the threshold. "
            "A labelled stretch is a run of consecutive anomalous readings. "
            "Random placement: as many alerts per run as the model raised, placed uniformly "
            "at random over its scored readings (exact expectations)."
            + ("" if informative else f" The alerts are {NO_BETTER_THAN_RANDOM}.")
        ),
    )


def _share_of(share: float, count: int, none: str) -> str:
    return none if count == 0 else f"{percent(share)} of {count}"


def summary_sentence(summary: dict[str, Any]) -> str:
    """The event-level figures in one line for the terminal: "no alerts" where a share of
    none would be undefined, never NaN.

    >>> summary_sentence({"windows": 2, "windows_alerted": 0.5, "windows_alerted_random":
    ...     0.25, "alerts": 0, "alerts_outside_windows": float("nan"),
    ...     "alerts_outside_windows_random": float("nan")})
    '50% of 2 labelled stretches alerted (random: 25%); no alerts'
    """
    windows, alerts = summary["windows"], summary["alerts"]
    if windows:
        stretches = (
            f"{percent(summary['windows_alerted'], 0)} of {windows} labelled stretches "
            f"alerted (random: {percent(summary['windows_alerted_random'], 0)})"
        )
    else:
        stretches = "no labelled stretches"
    if not alerts:
        return f"{stretches}; no alerts"
    sentence = (
        f"{stretches}, {percent(summary['alerts_outside_windows'], 0)} of {alerts} alerts "
        f"outside them (random: {percent(summary['alerts_outside_windows_random'], 0)})"
    )
    return sentence if beats_random(summary) else f"{sentence}; {NO_BETTER_THAN_RANDOM}"


NO_BETTER_THAN_RANDOM = (
    "no better than as many alerts placed at random, so these figures say nothing about the "
    "model here (e.g. a run labelled anomalous throughout)"
)


def beats_random(summary: dict[str, Any]) -> bool:
    """Whether the alerts do better than as many placed at random on either count: more
    labelled stretches alerted, or fewer alerts outside them.

    >>> beats_random({"windows": 1, "windows_alerted": 1.0, "windows_alerted_random": 1.0,
    ...     "alerts": 2, "alerts_outside_windows": 0.0, "alerts_outside_windows_random": 0.0})
    False
    """
    if summary["windows"] and summary["windows_alerted"] > summary["windows_alerted_random"]:
        return True
    outside, chance = summary["alerts_outside_windows"], summary["alerts_outside_windows_random"]
    return bool(summary["alerts"]) and outside < chance


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
