"""The plots' rules: a linear axis with the threshold on a bin edge, the PR warning."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np

from models import plots
from models.metrics import evaluate_detector
from models.plots import HISTOGRAM_SPAN, Timeline, histogram_bins, pr_warning
from models.report import EvaluationReport, ScoredDetector, write_report


def test_doctests() -> None:
    assert doctest.testmod(plots).failed == 0


def test_histogram_bins_are_linear_with_the_threshold_on_an_edge() -> None:
    scores = np.random.default_rng(0).lognormal(0, 1, 1000)
    edges = histogram_bins(2.5, scores)
    assert edges[0] == 0.0 and edges[-1] == HISTOGRAM_SPAN * 2.5
    assert 2.5 in edges
    np.testing.assert_allclose(np.diff(edges), np.diff(edges)[0])  # linear


def test_pr_warning_only_when_nearly_every_reading_is_anomalous() -> None:
    assert pr_warning(0.9) is None
    warning = pr_warning(0.95)
    assert warning is not None and "95% of these readings are anomalous" in warning


def test_report_writes_every_plot(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    scores = np.r_[rng.lognormal(0, 0.5, 200), rng.lognormal(2, 0.5, 1800)]
    labels = np.r_[np.zeros(200, bool), np.ones(1800, bool)]
    evaluation = evaluate_detector("toy", scores, labels, threshold=3.0, threshold_source="h")
    timeline = Timeline("run", scores / 3.0, labels, np.array([5, 300]), "raw")
    report = EvaluationReport(
        "toy", {}, [ScoredDetector(evaluation, scores, labels)], timelines=[timeline]
    )
    written = write_report(report, tmp_path)
    for role in ("histograms", "roc", "pr", "recall_at_far", "timeline"):
        assert written[role].stat().st_size > 0, role
    markdown = written["markdown"].read_text()
    assert "![timeline](timeline.png)" in markdown
