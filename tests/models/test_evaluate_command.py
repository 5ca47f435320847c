"""The terminal summary of ``models evaluate``: undefined figures read n/a, never nan."""

from __future__ import annotations

import numpy as np

from models.evaluate_command import summary_lines
from models.metrics import evaluate_detector


def test_undefined_figures_are_not_printed_as_nan() -> None:
    rng = np.random.default_rng(0)
    scores = np.r_[rng.lognormal(0, 0.3, 200), rng.lognormal(1, 0.3, 50)]
    labels = np.r_[np.zeros(200, bool), np.ones(50, bool)]
    # Nothing flagged: precision is undefined; no normal file marked: its rate too.
    evaluation = evaluate_detector(
        "cva over 8 readings", scores, labels, threshold=1e9, threshold_source="t"
    )
    text = summary_lines([evaluation])
    assert "nan" not in text.lower()
    header, row = text.splitlines()[:2]
    assert row.startswith("cva over 8 readings ") and row.split()[6] == "n/a"
    assert row.rstrip().endswith("n/a")
