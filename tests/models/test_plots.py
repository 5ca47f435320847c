"""The plots' rules: a linear axis with the threshold on a bin edge, the PR warning."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

from models import plots
from models.metrics import evaluate_detector
from models.plots import HISTOGRAM_SPAN, Timeline, histogram_bins, pr_warning, score_axis
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


@pytest.mark.parametrize(
    ("top", "labels", "limit"),
    [(0.8, ["0", "0.25", "0.5", "0.75", "1"], 1.15),
     (1.4, ["0", "0.25", "0.5", "0.75", "1", "1.5"], 1.61),
     (2.0, ["0", "0.25", "0.5", "0.75", "1", "2"], 2.3),
     (11.0, ["0", "0.25", "0.5", "0.75", "1", "2", "5", "10"], 12.65)],
)  # fmt: skip
def test_the_score_axis_labels_levels_below_the_threshold_and_ends_at_the_top(
    top: float, labels: list[str], limit: float
) -> None:
    """Levels under the threshold are readable, those above it too (1, 2, 5 a decade: symlog
    alone labels decades, so a score of 1.4 had no tick above the threshold), and no decade
    beyond the highest score stretches the axis (a peak of 2 on an axis to 10 would leave
    half the plot empty)."""
    plt = plots._pyplot()
    fig, ax = plt.subplots()
    score_axis(ax, top)
    assert [t.get_text() for t in ax.get_yticklabels()] == labels
    assert ax.get_ylim() == pytest.approx((0.0, limit))
    plt.close(fig)


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
    # 1% of 200 normal readings is 2 above the cut-off: rough; 5% is 10: not called so
    assert "Recall @ 1% FAR rests on the 2.0 highest of 200 normal readings" in markdown
    assert "Recall @ 5% FAR rests on" not in markdown
