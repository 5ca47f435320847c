"""The report writer: valid JSON (no NaN), markdown tables, the PNGs it promises."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import numpy as np

from models import report as report_module
from models.metrics import evaluate_detector
from models.report import (
    EvaluationReport,
    Example,
    ScoredDetector,
    Table,
    markdown_table,
    mean_error_share,
    write_report,
)


def test_mean_error_share_weights_every_reading_once() -> None:
    errors = np.array([[1.0, 3.0], [100.0, 100.0], [0.0, 0.0]])
    np.testing.assert_allclose(mean_error_share(errors), [(0.25 + 0.5 + 0) / 3, (0.75 + 0.5) / 3])


def test_markdown_table_digits_per_column() -> None:
    lines = markdown_table(["a", "b"], [[1.23456, 2.5]], {"a": 1})
    assert lines[2] == "| 1.2 | 2.500 |"


def test_write_report(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    scores = np.r_[rng.lognormal(0, 0.3, 200), rng.lognormal(1, 0.3, 50)]
    labels = np.r_[np.zeros(200, bool), np.ones(50, bool)]
    kinds = np.array([""] * 200 + ["step"] * 50, dtype=object)
    # a threshold above everything: precision is undefined (NaN) and must become null in JSON
    evaluation = evaluate_detector(
        "autoencoder", scores, labels, threshold=1e9, threshold_source="test", kinds=kinds
    )
    errors = rng.random((250, 4))
    report = EvaluationReport(
        title="toy",
        context={"data": "random", "nested": {"a": 1.5}},
        detectors=[ScoredDetector(evaluation, scores, labels)],
        sensors=["s1", "s2", "s3", "s4"],
        contribution_anomalous=mean_error_share(errors[labels]),
        contribution_normal=mean_error_share(errors[~labels]),
        tables=[Table("extra", ["k", "v"], [["x", 1.0]])],
        examples=[Example("step (error 3)", errors[-1], highlight=2)],
    )
    written = write_report(report, tmp_path)
    for role in ("histograms", "roc", "pr", "contributions", "examples", "json", "markdown"):
        assert written[role].stat().st_size > 0, role
    text = (tmp_path / "report.json").read_text()
    assert "NaN" not in text
    body = json.loads(text)
    assert body["detectors"][0]["at_threshold"]["precision"] is None
    assert body["detectors"][0]["at_threshold"]["recall"] == 0.0
    assert body["tables"][0]["rows"] == [{"k": "x", "v": 1.0}]
    markdown = (tmp_path / "report.md").read_text()
    assert "| autoencoder |" in markdown and "n/a" in markdown
    assert "![examples](examples.png)" in markdown
    assert "nested**: a = 1.500" in markdown


def test_a_kind_of_one_reading_shows_no_p_value_and_no_verdict_it_cannot_have(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    scores = np.r_[rng.lognormal(0, 0.3, 300), rng.lognormal(2, 0.3, 40), [50.0]]
    labels = np.r_[np.zeros(300, bool), np.ones(41, bool)]
    kinds = np.array([""] * 300 + ["step"] * 40 + ["spike"], dtype=object)
    evaluation = evaluate_detector(
        "model", scores, labels, threshold=4.0, threshold_source="test", kinds=kinds
    )
    report = EvaluationReport(
        title="toy", context={}, detectors=[ScoredDetector(evaluation, scores, labels)]
    )
    write_report(report, tmp_path)
    rows = {
        line.split(" | ")[0].strip("| "): line
        for line in (tmp_path / "report.md").read_text().splitlines()
        if line.startswith(("| spike |", "| step |"))
    }
    assert rows["spike"].startswith("| spike | 1 | n/a | n/a |")
    assert rows["spike"].rstrip(" |").endswith("100.0% | too few")
    assert "< 1e-300" not in rows["spike"] and "nan" not in rows["spike"]
    assert "n/a" not in rows["step"].split(" | ")[3]  # a kind the test can judge keeps its p


def test_doctests() -> None:
    assert doctest.testmod(report_module).failed == 0
