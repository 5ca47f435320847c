"""Event-level figures of ``models evaluate`` on constructed runs."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from models import evaluate_events as evaluate_events_module
from models.evaluate_events import (
    NO_BETTER_THAN_RANDOM,
    RunScores,
    evaluate_events,
    summary_sentence,
)
from models.events import AlertRule


def test_alerts_against_labelled_stretches_per_kind() -> None:
    normalised = np.full(400, 0.5)
    labels = np.zeros(400, dtype=bool)
    kinds = np.full(400, "", dtype=object)
    labels[100:150] = True
    kinds[100:150] = "step"
    normalised[110:150] = 5.0  # caught: the third high reading is 112
    labels[300:320] = True
    kinds[300:320] = "stuck"  # missed
    normalised[200:210] = 5.0  # a false alert
    stamps = np.datetime64("2024-01-01T00:00:00") + np.arange(400) * np.timedelta64(60, "s")
    run = RunScores("labelled run", normalised, labels, kinds, stamps)
    quiet = RunScores("normal run", np.full(100, 0.5), np.zeros(100, bool),
                      np.full(100, "", dtype=object), None)  # fmt: skip
    rule = AlertRule("none", k=3, n=5, cooldown=10)
    result = evaluate_events([quiet, run], rule)
    figures = result.figures
    assert figures.n_windows == 2 and figures.n_alerts == 2
    assert figures.windows_alerted == 0.5
    assert figures.delays == [12]
    assert figures.alerts_outside == 0.5
    assert figures.alerts_outside_random == pytest.approx(1 - 70 / 400)
    # one false alert in 330 normal minutes of the timed run
    assert figures.false_alerts_per_day == pytest.approx(1 / (330 / 1440))
    kinds_table = {row[0]: row for row in result.tables[1].rows}
    assert kinds_table["step"][1:3] == [1, "100%"] and kinds_table["step"][4] == 12.0
    assert kinds_table["stuck"][2] == "0%" and kinds_table["stuck"][4] == "n/a"
    assert [t.alerts.tolist() for t in result.timelines] == [[], [112, 202]]


def test_numeric_timestamps_are_seconds_for_false_alerts_per_day() -> None:
    """Epoch seconds, which the loader accepts as a time column, counted as no timestamps:
    "10.63 per 10,000 normal readings (no timestamps)"."""
    normalised = np.full(400, 0.5)
    normalised[200:210] = 5.0  # one false alert in 400 normal readings
    labels = np.zeros(400, dtype=bool)
    kinds = np.full(400, "", dtype=object)
    epoch = 1_767_600_000 + 60.0 * np.arange(400)  # a reading a minute, as float64 loads it
    iso = np.datetime64("2026-01-05T08:00:00", "ns") + np.arange(400) * np.timedelta64(60, "s")
    rule = AlertRule("none", k=3, n=5, cooldown=10)
    by_number = evaluate_events([RunScores("normal run", normalised, labels, kinds, epoch)], rule)
    by_time = evaluate_events([RunScores("normal run", normalised, labels, kinds, iso)], rule)
    assert by_number.figures.false_alerts_per_day == pytest.approx(1 / (400 / 1440))
    assert by_number.figures.false_alerts_per_day == by_time.figures.false_alerts_per_day
    (said,) = [row[1] for row in by_number.tables[0].rows if row[0] == "false alerts"]
    assert said == "1: 3.60 per day of normal operation (numeric timestamps read as seconds)"
    (said,) = [row[1] for row in by_time.tables[0].rows if row[0] == "false alerts"]
    assert said == "1: 3.60 per day of normal operation"


def _quiet_run(n: int = 200) -> RunScores:
    labels = np.zeros(n, dtype=bool)
    labels[50:80] = True
    kinds = np.where(labels, "step", "").astype(object)
    return RunScores("labelled run", np.full(n, 0.5), labels, kinds, None)


def test_the_smoothing_is_named_for_whose_it_is() -> None:
    """A model that declares ewma:0.3 has its scores smoothed so before the rule, which adds
    none: the report names the model's smoothing, not "no smoothing"."""
    declared = evaluate_events([_quiet_run()], AlertRule(smoothing="none"), declared="ewma:0.3")
    note = declared.tables[0].note
    assert "ewma:0.3 as the model declares, then 3 of 5 above the threshold" in note
    assert "no smoothing" not in note and "default rule" not in note
    assert declared.summary["rule"].startswith("ewma:0.3 as the model declares")
    (line,) = declared.timelines
    assert "ewma:0.3" in line.smoothing and "no smoothing" not in line.smoothing
    assert "smoothed score / threshold" in line.title
    # A model that declares none: the service's own smoothing, said to be the service's.
    service = evaluate_events([_quiet_run()], AlertRule(), declared=None)
    assert "rolling median of 3 (the service's" in service.tables[0].note
    assert "rolling median of 3" in service.timelines[0].smoothing
    # A model that declares "none": not smoothed, and the title does not say smoothed.
    bare = evaluate_events([_quiet_run()], AlertRule(smoothing="none"), declared="none")
    assert "no smoothing, as the model declares" in bare.tables[0].note
    assert "smoothed" not in bare.timelines[0].title


def test_no_alerts_is_said_not_nan() -> None:
    result = evaluate_events([_quiet_run()], AlertRule(smoothing="none"), declared="none")
    assert result.figures.n_alerts == 0
    cells = [str(cell) for row in result.tables[0].rows for cell in row]
    assert not any("nan" in cell for cell in cells), cells
    assert "no alerts" in cells and "no alert inside a labelled stretch" in cells
    sentence = summary_sentence(result.summary)
    assert sentence == "0% of 1 labelled stretches alerted (random: 0%); no alerts"


def test_alerts_no_better_than_random_placement_are_said_to_tell_nothing() -> None:
    """A run labelled anomalous throughout: any alert is inside its one stretch, as a random
    one would be, so the figures cannot tell a good model from a bad one."""
    high = np.full(300, 0.5)
    high[100:120] = 5.0
    throughout = RunScores(
        "labelled run", high, np.ones(300, dtype=bool), np.full(300, "fault", dtype=object), None
    )
    rule = AlertRule("none", k=3, n=5, cooldown=10)
    result = evaluate_events([throughout], rule)
    assert result.summary["windows_alerted"] == result.summary["windows_alerted_random"] == 1.0
    assert summary_sentence(result.summary).endswith(NO_BETTER_THAN_RANDOM)
    assert NO_BETTER_THAN_RANDOM in result.tables[0].note
    # Alerts inside short stretches beat random placement: nothing is added.
    labels = np.zeros(300, dtype=bool)
    labels[95:125] = True
    apart = RunScores(
        "labelled run", high, labels, np.where(labels, "fault", "").astype(object), None
    )
    informative = evaluate_events([apart], rule)
    assert NO_BETTER_THAN_RANDOM not in summary_sentence(informative.summary)
    assert NO_BETTER_THAN_RANDOM not in informative.tables[0].note


def test_doctests() -> None:
    assert doctest.testmod(evaluate_events_module).failed == 0
