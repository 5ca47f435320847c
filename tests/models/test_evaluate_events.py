"""Event-level figures of ``models evaluate`` on constructed runs."""

from __future__ import annotations

import numpy as np
import pytest

from models.evaluate_events import RunScores, evaluate_events
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
