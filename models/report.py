"""Write an evaluation as ``report.json`` (for machines), ``report.md`` (for people) and PNGs.

The plots are the ones a reviewer asks for before trusting a threshold: score histograms with
the threshold line (is the threshold in the gap?), ROC and PR curves of every detector on the
same readings (is the autoencoder better than PCA?), the per-sensor share of the error on
anomalous readings (does it blame plausible sensors?) and, for benchmarks, per-fault bars.
matplotlib runs on the Agg backend: no display is needed.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from models.metrics import DetectorEvaluation, precision_recall_curve, roc_curve

TOP_SENSORS = 20


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
        written["histograms"] = _plot_histograms(report.detectors, out / "histograms.png")
        written["roc"] = _plot_roc(report.detectors, out / "roc.png")
        written["pr"] = _plot_pr(report.detectors, out / "pr.png")
    if report.contribution_anomalous is not None and report.sensors:
        written["contributions"] = _plot_contributions(
            report.sensors,
            report.contribution_anomalous,
            report.contribution_normal,
            out / "contributions.png",
        )
    if report.examples and report.sensors:
        written["examples"] = _plot_examples(report.sensors, report.examples, out / "examples.png")
    json_path = out / "report.json"
    json_path.write_text(json.dumps(_report_dict(report, written), indent=2, default=_jsonable))
    written["json"] = json_path
    md_path = out / "report.md"
    md_path.write_text(_markdown(report, written))
    written["markdown"] = md_path
    return written


def plot_grouped_bars(
    path: Path,
    categories: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    ylabel: str,
    reference_line: tuple[float, str] | None = None,
) -> Path:
    """Side-by-side bars per category (e.g. MDR per TEP fault for each method)."""
    plt = _pyplot()
    width_inches = min(16.0, max(8.0, 0.12 * len(categories) * max(1, len(series)) + 3))
    fig, ax = plt.subplots(figsize=(width_inches, 4.5))
    width = 0.8 / max(1, len(series))
    positions = np.arange(len(categories))
    for i, (name, values) in enumerate(series.items()):
        ax.bar(positions + (i - (len(series) - 1) / 2) * width, values, width, label=name)
    if reference_line is not None:
        ax.axhline(reference_line[0], color="black", linestyle="--", linewidth=1)
        ax.text(
            len(categories) - 0.5, reference_line[0], reference_line[1], ha="right", va="bottom"
        )
    ax.set_xticks(positions, list(categories))
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_histograms(detectors: list[ScoredDetector], path: Path) -> Path:
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(detectors), figsize=(5.0 * len(detectors), 3.8), squeeze=False)
    for ax, detector in zip(axes[0], detectors, strict=True):
        scores = np.asarray(detector.scores, dtype=np.float64)
        labels = np.asarray(detector.labels, dtype=bool)
        threshold = detector.evaluation.threshold
        positive = scores[scores > 0]
        floor = float(positive.min()) if positive.size else 1e-12
        clipped = np.maximum(scores, floor)
        upper = max(float(clipped.max()), threshold if threshold > 0 else floor)
        bins = np.geomspace(floor, upper * 1.0001, 60)
        ax.hist(clipped[~labels], bins=bins, alpha=0.6, label="normal", density=True)
        ax.hist(clipped[labels], bins=bins, alpha=0.6, label="anomalous", density=True)
        if threshold > 0:
            ax.axvline(threshold, color="black", linestyle="--", label="threshold")
        ax.set_xscale("log")
        ax.set_xlabel("score (log scale)")
        ax.set_ylabel("density")
        ax.set_title(detector.evaluation.detector)
        ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_roc(detectors: list[ScoredDetector], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 4.5))
    for detector in detectors:
        fpr, tpr, _ = roc_curve(detector.scores, detector.labels)
        evaluation = detector.evaluation
        line = ax.plot(fpr, tpr, label=f"{evaluation.detector} (AUC {evaluation.roc_auc:.3f})")
        at = evaluation.at_threshold
        ax.plot(at.false_alarm_rate, at.recall, "o", color=line[0].get_color())
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false-alarm rate")
    ax.set_ylabel("recall")
    ax.set_title("ROC (dots: operating thresholds)")
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_pr(detectors: list[ScoredDetector], path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.0, 4.5))
    for detector in detectors:
        precision, recall, _ = precision_recall_curve(detector.scores, detector.labels)
        evaluation = detector.evaluation
        line = ax.step(
            np.r_[0.0, recall],
            np.r_[precision[0], precision],
            where="post",
            label=f"{evaluation.detector} (AP {evaluation.pr_auc:.3f})",
        )
        at = evaluation.at_threshold
        if not math.isnan(at.precision):
            ax.plot(at.recall, at.precision, "o", color=line[0].get_color())
    prevalence = float(np.mean(np.asarray(detectors[0].labels, dtype=bool)))
    ax.axhline(prevalence, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall (dots: operating thresholds)")
    ax.legend(fontsize="small", loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_contributions(
    sensors: list[str], anomalous: np.ndarray, normal: np.ndarray | None, path: Path
) -> Path:
    plt = _pyplot()
    order = np.argsort(-anomalous)[:TOP_SENSORS]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.4 * len(order) + 2), 4.2))
    positions = np.arange(order.size)
    width = 0.4 if normal is not None else 0.8
    ax.bar(
        positions - (width / 2 if normal is not None else 0),
        anomalous[order],
        width,
        label="anomalous readings",
    )
    if normal is not None:
        ax.bar(positions + width / 2, normal[order], width, label="normal readings")
    ax.axhline(1.0 / len(sensors), color="grey", linestyle=":", linewidth=1, label="uniform share")
    ax.set_xticks(positions, [sensors[i] for i in order], rotation=60, ha="right")
    ax.set_ylabel("mean share of the reading's error")
    ax.set_title(f"Per-sensor contribution (top {order.size} on anomalous readings)")
    ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_examples(sensors: list[str], examples: list[Example], path: Path) -> Path:
    plt = _pyplot()
    columns = 2 if len(examples) > 1 else 1
    rows = math.ceil(len(examples) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(7.0 * columns, 2.6 * rows), squeeze=False)
    positions = np.arange(len(sensors))
    for ax, example in zip(axes.ravel(), examples, strict=False):
        colours = ["tab:blue"] * len(sensors)
        if example.highlight is not None:
            colours[example.highlight] = "tab:red"
        ax.bar(positions, example.errors, color=colours)
        top = int(np.argmax(example.errors))
        caption = f"{example.title}; largest: {sensors[top]}"
        if example.highlight is not None:
            caption += f"; at fault (red): {sensors[example.highlight]}"
        ax.set_title(caption, fontsize="small")
        ax.set_ylabel("squared error")
        ax.set_xticks([])
    for ax in axes.ravel()[len(examples) :]:
        ax.axis("off")
    fig.suptitle("Per-sensor error of detected anomalous readings")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


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


def _pct(value: float) -> str:
    return "n/a" if not math.isfinite(value) else f"{100 * value:.1f}%"


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


def _detector_rows(detectors: list[ScoredDetector]) -> tuple[list[str], list[list[Any]]]:
    fars = [p.target_false_alarm_rate for p in detectors[0].evaluation.recall_at_far]
    columns = ["detector", "threshold", "ROC-AUC", "PR-AUC", "precision", "recall", "F1"]
    columns += ["false alarms", "missed", *[f"recall @ {far:.0%} FAR" for far in fars]]
    columns += ["Cohen's d (log)", "Welch p"]
    rows = []
    for detector in detectors:
        e = detector.evaluation
        at = e.at_threshold
        row: list[Any] = [e.detector, e.threshold, e.roc_auc, e.pr_auc, at.precision, at.recall]
        row += [at.f1, _pct(at.false_alarm_rate), _pct(at.missed_detection_rate)]
        row += [_pct(p.recall) for p in e.recall_at_far]
        p_value = e.separability.p_value
        row += [e.separability.cohens_d, f"{p_value:.2g}" if p_value > 0 else "< 1e-300"]
        rows.append(row)
    return columns, rows


def _per_kind_rows(detectors: list[ScoredDetector]) -> tuple[list[str], list[list[Any]]]:
    kinds = sorted({k for d in detectors for k in d.evaluation.per_kind})
    columns = ["anomaly kind", *[f"{d.evaluation.detector} recall" for d in detectors]]
    rows: list[list[Any]] = []
    for kind in kinds:
        row: list[Any] = [kind]
        for d in detectors:
            counts = d.evaluation.per_kind.get(kind)
            row.append("n/a" if counts is None else _pct(counts.recall))
        rows.append(row)
    return columns, rows


def _markdown(report: EvaluationReport, written: dict[str, Path]) -> str:
    lines = [f"# {report.title}", ""]
    for key, value in report.context.items():
        if isinstance(value, dict):
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
            "uses a threshold picked on these normals: it describes the ROC curve, it is not "
            "a deployable setting.",
            "",
            *markdown_table(*_detector_rows(report.detectors)),
            "",
            "Thresholds:",
            "",
        ]
        for d in report.detectors:
            lines.append(f"- {d.evaluation.detector}: {d.evaluation.threshold_source}")
        lines += ["", "## Capacity diagnosis", ""]
        for d in report.detectors:
            lines.append(f"- **{d.evaluation.detector}**: {d.evaluation.capacity.message}")
        lines.append("")
        if any(d.evaluation.per_kind for d in report.detectors):
            lines += ["## Recall per anomaly kind (at the operating threshold)", ""]
            lines += [*markdown_table(*_per_kind_rows(report.detectors)), ""]
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
