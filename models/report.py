"""Write an evaluation as ``report.json`` (for machines), ``report.md`` (for people) and PNGs.

The plots (``models.plots``) are the ones a reviewer asks for before trusting a threshold:
score counts around the threshold (what share of each class lies beyond it?), ROC, PR and
recall at fixed false-alarm rates for every detector on the same readings (is the
model better than PCA?), the per-sensor share of the error on anomalous readings (does
it blame plausible sensors?), the smoothed score over time against the threshold and, for
benchmarks, per-fault bars. The markdown gives the verdict per anomaly kind.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.metrics import DetectorEvaluation
from models.plots import (
    Timeline,
    plot_contributions,
    plot_examples,
    plot_histograms,
    plot_pr,
    plot_recall_at_far,
    plot_roc,
    plot_timelines,
)


@dataclass(frozen=True)
class ScoredDetector:
    """One detector's evaluation and the raw scores behind it (for the plots)."""

    evaluation: DetectorEvaluation
    scores: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True)
class Table:
    """A titled table rendered into both the JSON and the markdown report."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    note: str = ""
    digits: dict[str, int] = field(default_factory=dict)
    """Decimals per column in the markdown (default: 3 significant-looking decimals)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "note": self.note,
            "rows": [dict(zip(self.columns, row, strict=True)) for row in self.rows],
        }


@dataclass(frozen=True)
class Figure:
    """A PNG already written into the report folder by the caller (e.g. per-fault bars)."""

    file: str
    caption: str


@dataclass(frozen=True)
class Example:
    """One reading's per-sensor errors, with the sensor known to be at fault (if known)."""

    title: str
    errors: np.ndarray
    highlight: int | None = None


@dataclass
class EvaluationReport:
    title: str
    context: dict[str, Any]
    detectors: list[ScoredDetector]
    sensors: list[str] = field(default_factory=list)
    contribution_anomalous: np.ndarray | None = None
    """Mean share of each sensor in the error of anomalous readings, (n_sensors,)."""
    contribution_normal: np.ndarray | None = None
    tables: list[Table] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    examples: list[Example] = field(default_factory=list)
    """Detected anomalous readings whose per-sensor errors are plotted one by one."""
    timelines: list[Timeline] = field(default_factory=list)
    """Runs whose smoothed score is plotted over time against the threshold."""


def mean_error_share(per_sensor_errors: np.ndarray) -> np.ndarray:
    """Average over readings of each sensor's share of that reading's total error, so every
    reading counts once however large its error."""
    errors = np.asarray(per_sensor_errors, dtype=np.float64)
    totals = errors.sum(axis=1, keepdims=True)
    shares = np.divide(errors, totals, out=np.zeros_like(errors), where=totals > 0)
    return np.asarray(shares.mean(axis=0))


def check_report_folder(out_dir: Path | str) -> None:
    """Raise ``OSError`` saying why ``out_dir`` cannot hold a report (a file in its place or
    above it, no permission), so a command refuses it before its work instead of failing
    after minutes of it. Nothing is created."""
    existing = Path(out_dir)
    while not (existing.exists() or existing.is_symlink()) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise NotADirectoryError(f"{existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise PermissionError(f"no permission to write in {existing}")


def write_report(report: EvaluationReport, out_dir: Path | str) -> dict[str, Path]:
    """Write everything into ``out_dir``; returns the written files by role."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    if report.detectors:
        written["histograms"] = plot_histograms(report.detectors, out / "histograms.png")
        written["roc"] = plot_roc(report.detectors, out / "roc.png")
        written["pr"] = plot_pr(report.detectors, out / "pr.png")
        written["recall_at_far"] = plot_recall_at_far(report.detectors, out / "recall_at_far.png")
    if report.contribution_anomalous is not None and report.sensors:
        written["contributions"] = plot_contributions(
            report.sensors,
            report.contribution_anomalous,
            report.contribution_normal,
            out / "contributions.png",
        )
    if report.examples and report.sensors:
        written["examples"] = plot_examples(report.sensors, report.examples, out / "examples.png")
    if report.timelines:
        written["timeline"] = plot_timelines(report.timelines, out / "timeline.png")
    json_path = out / "report.json"
    json_path.write_text(json.dumps(_report_dict(report, written), indent=2, default=_jsonable))
    written["json"] = json_path
    md_path = out / "report.md"
    md_path.write_text(_markdown(report, written))
    written["markdown"] = md_path
    return written


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _clean(value: Any) -> Any:
    """JSON has no NaN or Infinity: write null (and say so in the markdown as n/a)."""
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.ndarray):
        return _clean(value.tolist())
    return value


def _report_dict(report: EvaluationReport, written: dict[str, Path]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": report.title,
        "context": report.context,
        "detectors": [d.evaluation.to_dict() for d in report.detectors],
        "tables": [t.to_dict() for t in report.tables],
        "notes": report.notes,
        "figures": {role: p.name for role, p in written.items()}
        | {f.file: f.caption for f in report.figures},
    }
    if report.contribution_anomalous is not None and report.sensors:
        body["sensor_contribution"] = {
            "anomalous": dict(zip(report.sensors, report.contribution_anomalous, strict=True)),
            "normal": None
            if report.contribution_normal is None
            else dict(zip(report.sensors, report.contribution_normal, strict=True)),
        }
    return dict(_clean(body))


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        value = float(value)
        if not math.isfinite(value):
            return "n/a"
        if value != 0 and (abs(value) < 10 ** (-digits) or abs(value) >= 1e5):
            return f"{value:.{digits}g}"
        return f"{value:.{digits}f}"
    return str(value)


def p_text(p_value: float) -> str:
    """A p-value as the tables print it: ``n/a`` where no test ran (a kind of one reading),
    ``< 1e-300`` where it underflows to 0.

    >>> [p_text(v) for v in (0.0123, 0.0, float("nan"))]
    ['0.012', '< 1e-300', 'n/a']
    """
    if math.isnan(p_value):
        return "n/a"
    return f"{p_value:.2g}" if p_value > 0 else "< 1e-300"


def percent(value: float, digits: int = 1) -> str:
    """A rate as a percentage, ``n/a`` when it is undefined (NaN)."""
    return "n/a" if not math.isfinite(value) else f"{100 * value:.{digits}f}%"


def markdown_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], digits: dict[str, int] | None = None
) -> list[str]:
    places = [(digits or {}).get(column, 3) for column in columns]
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [
        "| " + " | ".join(_fmt(cell, d) for cell, d in zip(row, places, strict=True)) + " |"
        for row in rows
    ]
    return lines


ROUGH_BELOW = 10
"""Normal readings above a fixed-rate cut-off below which the recall at it is called rough."""


def _rough_points(evaluation: DetectorEvaluation) -> list[str]:
    """A line for each fixed false-alarm rate whose cut-off rests on a handful of readings."""
    rough = [p for p in evaluation.recall_at_far if p.rests_on < ROUGH_BELOW]
    return [
        f"Recall @ {p.target_false_alarm_rate:.0%} FAR rests on the {p.rests_on:.1f} highest of "
        f"{p.n_normals} normal readings: read it as rough (a longer normal file steadies it)."
        for p in rough
    ] + ([""] if rough else [])


def _detector_rows(detectors: list[ScoredDetector]) -> tuple[list[str], list[list[Any]]]:
    fars = [p.target_false_alarm_rate for p in detectors[0].evaluation.recall_at_far]
    columns = ["detector", "threshold", "ROC-AUC", "PR-AUC", "precision", "recall", "F1"]
    columns += ["false alarms", "false alarms, normal file", "missed"]
    where = " on normal operation" if detectors[0].evaluation.recall_at_far[0].on_operation else ""
    columns += [f"recall @ {far:.0%} FAR{where}" for far in fars]
    columns += ["Cohen's d (log)", "Welch p"]
    rows = []
    for detector in detectors:
        e = detector.evaluation
        at = e.at_threshold
        row: list[Any] = [e.detector, e.threshold, e.roc_auc, e.pr_auc, at.precision, at.recall]
        row += [at.f1, percent(at.false_alarm_rate), percent(e.operation_false_alarm_rate)]
        row += [percent(at.missed_detection_rate)]
        row += [percent(p.recall) for p in e.recall_at_far]
        p_value = e.separability.p_value
        row += [e.separability.cohens_d, p_text(p_value)]
        rows.append(row)
    return columns, rows


def _verdict_section(detectors: list[ScoredDetector]) -> list[str]:
    """Per kind: each detector's recall and verdict, the rules' figures for the first, and
    what to do about every kind it does not separate."""
    first = detectors[0].evaluation
    kinds = sorted({k for d in detectors for k in d.evaluation.verdicts})
    columns = ["anomaly kind", "readings", "Cohen's d", "Welch p", "median ratio"]
    columns += [
        f"{d.evaluation.detector} {part}" for d in detectors for part in ("recall", "verdict")
    ]
    rows: list[list[Any]] = []
    for kind in kinds:
        mine = first.verdicts.get(kind)
        row: list[Any] = [kind]
        if mine is None:
            row += ["n/a"] * 4
        else:
            p = mine.separability.p_value
            row += [mine.n_readings, mine.separability.cohens_d]
            row += [p_text(p), mine.capacity.median_ratio]
        for d in detectors:
            verdict = d.evaluation.verdicts.get(kind)
            row += ["n/a", "n/a"] if verdict is None else [percent(verdict.recall), verdict.verdict]
        rows.append(row)
    lines = [
        "## Verdict per anomaly kind",
        "",
        "Each kind against every normal reading. A kind separates when Welch's t-test on log "
        "scores gives p < 0.01 and Cohen's d > 2 (both); it is not separated when its median "
        "score is under 1.5x the normal median or its ROC-AUC under 0.6 (the capacity rule); "
        "otherwise it is weak; a kind of a single reading is too few to test. Figures: "
        f"{first.detector}. Recall: at the operating threshold.",
        "",
        *markdown_table(columns, rows, {"Cohen's d": 2, "median ratio": 2}),
        "",
    ]
    todo = [v for v in first.verdicts.values() if v.verdict != "ok"]
    if todo:
        lines += [f"What to do ({first.detector}):", ""]
        for v in todo:
            others = [
                f"{d.evaluation.detector} {d.evaluation.verdicts[v.kind].verdict}"
                for d in detectors[1:]
                if v.kind in d.evaluation.verdicts
            ]
            here = f" (here: {', '.join(others)})" if others else ""
            lines.append(f"- **{v.kind}**: {v.message}{here}")
        lines.append("")
    return lines


def _markdown(report: EvaluationReport, written: dict[str, Path]) -> str:
    lines = [f"# {report.title}", ""]
    for key, value in report.context.items():
        if isinstance(value, dict) and "message" in value:  # its figures are in report.json
            value = value["message"]
        elif isinstance(value, dict):
            value = "; ".join(f"{k} = {_fmt(v)}" for k, v in value.items())
        lines.append(f"- **{key}**: {_fmt(value)}")
    lines.append("")
    for note in report.notes:
        lines += [f"> {note}", ""]
    if report.detectors:
        first = report.detectors[0].evaluation
        lines += [
            "## Detection quality",
            "",
            f"{first.n_normal} normal and {first.n_anomalous} anomalous readings; a reading is "
            "flagged when its score is above the threshold. Recall at a fixed false-alarm rate "
            "uses a threshold picked on the normals of normal operation (the normal file; "
            "else on all of these): it describes the ROC curve, it is not a deployable "
            "setting.",
            "",
            *markdown_table(*_detector_rows(report.detectors)),
            "",
            *_rough_points(first),
            "Thresholds:",
            "",
        ]
        for d in report.detectors:
            lines.append(f"- {d.evaluation.detector}: {d.evaluation.threshold_source}")
        lines += ["", "## Capacity diagnosis", ""]
        for d in report.detectors:
            e = d.evaluation
            per_kind = f" Per kind: {e.verdict_summary}" if len(e.verdicts) > 1 else ""
            lines.append(f"- **{e.detector}**: pooled, {e.capacity.message}{per_kind}")
        lines.append("")
        if any(d.evaluation.per_kind for d in report.detectors):
            lines += _verdict_section(report.detectors)
    for table in report.tables:
        lines += [f"## {table.title}", ""]
        if table.note:
            lines += [table.note, ""]
        lines += [*markdown_table(table.columns, table.rows, table.digits), ""]
    images = [(p.name, role) for role, p in written.items() if p.suffix == ".png"]
    images += [(f.file, f.caption) for f in report.figures]
    if images:
        lines += ["## Plots", ""]
        lines += [f"![{caption}]({name})" for name, caption in images]
        lines.append("")
    return "\n".join(lines)
