"""The report's plots, drawn so a person reads the numbers off them.

- score counts on linear bins around the threshold, with the share of each class beyond it
  written on the plot (scores far beyond fall in one labelled overflow bin, never off-axis);
- ROC, and precision-recall with a warning when nearly every reading is anomalous (the PR
  curve then sits near the prevalence whatever the detector does);
- recall at fixed false-alarm rates, which still means something then;
- per-sensor contributions and examples as top-k bars labelled with sensor names;
- a time plot of the smoothed score against the threshold, fault onsets and alerts marked.

matplotlib runs on the Agg backend: no display is needed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from models.metrics import precision_recall_curve, roc_curve

if TYPE_CHECKING:
    from models.report import Example, ScoredDetector

TOP_SENSORS = 20
TOP_EXAMPLE_SENSORS = 8
HISTOGRAM_SPAN = 3.0
"""The histogram's linear axis runs from 0 to this many thresholds."""
HISTOGRAM_BINS = 45
MOSTLY_ANOMALOUS = 0.9
"""Above this share of anomalous readings the PR curve carries no information."""


@dataclass(frozen=True)
class Timeline:
    """One run's scores over time, normalised by the threshold (1.0 = the threshold)."""

    title: str
    smoothed: np.ndarray
    labels: np.ndarray
    alerts: np.ndarray
    """Indices where alerts start."""
    smoothing: str
    """How ``smoothed`` was smoothed (said in the legend)."""


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


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


def histogram_bins(threshold: float, scores: np.ndarray) -> np.ndarray:
    """Linear bin edges from 0 to ``HISTOGRAM_SPAN`` thresholds, the threshold on an edge
    (scores beyond the last edge go to an overflow bin)."""
    if threshold > 0:
        upper = HISTOGRAM_SPAN * threshold
    else:
        upper = float(np.quantile(scores, 0.99)) or 1.0
    lower = min(0.0, float(np.min(scores)))
    edges = np.linspace(lower, upper, HISTOGRAM_BINS + 1)
    if threshold > 0 and lower == 0.0:
        # HISTOGRAM_BINS is a multiple of HISTOGRAM_SPAN: the threshold falls on an edge.
        edges[round(HISTOGRAM_BINS / HISTOGRAM_SPAN)] = threshold
    return edges


def plot_histograms(detectors: list[ScoredDetector], path: Path) -> Path:
    """Counts (not densities) per class on linear bins around the threshold; the last bar
    holds every score beyond the axis, and each panel states the share above the threshold
    that the flagging decision actually sees."""
    plt = _pyplot()
    fig, axes = plt.subplots(
        2, len(detectors), figsize=(5.2 * len(detectors), 6.2), squeeze=False, sharex="col"
    )
    for column, detector in enumerate(detectors):
        scores = np.asarray(detector.scores, dtype=np.float64)
        labels = np.asarray(detector.labels, dtype=bool)
        threshold = detector.evaluation.threshold
        edges = histogram_bins(threshold, scores)
        width = edges[1] - edges[0]
        for row, (mask, name, colour) in enumerate(
            [(~labels, "normal", "tab:blue"), (labels, "anomalous", "tab:orange")]
        ):
            ax = axes[row][column]
            values = scores[mask]
            counts, _ = np.histogram(np.clip(values, edges[0], edges[-1]), bins=edges)
            overflow = int(np.sum(values > edges[-1]))
            counts[-1] -= int(np.sum(values > edges[-1]))
            ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color=colour)
            if overflow:
                ax.bar(edges[-1], overflow, width=width * 1.5, align="edge", color=colour,
                       hatch="//", edgecolor="black")  # fmt: skip
                ax.text(edges[-1] + 0.75 * width, overflow, f"{overflow}\n> {edges[-1]:.3g}",
                        ha="center", va="bottom", fontsize="x-small")  # fmt: skip
            ax.axvline(threshold, color="black", linestyle="--", linewidth=1.2)
            beyond = float(np.mean(values > threshold)) if values.size else math.nan
            ax.set_title(
                f"{detector.evaluation.detector}: {name} ({values.size} readings)\n"
                f"{beyond:.1%} above the threshold ({int(np.sum(values > threshold))})",
                fontsize="small",
            )
            ax.set_ylabel("readings")
            ax.margins(y=0.15)
        axes[1][column].set_xlabel("score (linear; dashed: threshold; hatched: beyond the axis)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_roc(detectors: list[ScoredDetector], path: Path) -> Path:
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


def pr_warning(prevalence: float) -> str | None:
    """What the PR plot says when nearly every reading is anomalous (None otherwise).

    >>> pr_warning(0.5) is None
    True
    """
    if prevalence <= MOSTLY_ANOMALOUS:
        return None
    return (
        f"{prevalence:.0%} of these readings are anomalous:\nprecision stays near "
        f"{prevalence:.0%} whatever the detector does,\nso this curve says little. Read "
        "recall at a\nfixed false-alarm rate instead (recall_at_far.png)."
    )


def plot_pr(detectors: list[ScoredDetector], path: Path) -> Path:
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
    warning = pr_warning(prevalence)
    if warning:
        ax.text(
            0.5,
            0.45,
            warning,
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize="small",
            bbox={"facecolor": "lightyellow", "edgecolor": "grey"},
        )
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall (dots: operating thresholds)")
    ax.legend(fontsize="small", loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_recall_at_far(detectors: list[ScoredDetector], path: Path) -> Path:
    """Recall at each fixed false-alarm rate and at the operating threshold, per detector."""
    plt = _pyplot()
    first = detectors[0].evaluation
    groups = [
        f"at {p.target_false_alarm_rate:.0%} false alarms"
        + ("\non normal operation" if p.on_operation else "")
        for p in first.recall_at_far
    ]
    groups.append("at the operating threshold")
    fig, ax = plt.subplots(figsize=(max(6.0, 2.2 * len(groups) + 1.5), 4.2))
    width = 0.8 / len(detectors)
    positions = np.arange(len(groups))
    for i, detector in enumerate(detectors):
        e = detector.evaluation
        values = [100 * p.recall for p in e.recall_at_far] + [100 * e.at_threshold.recall]
        offset = (i - (len(detectors) - 1) / 2) * width
        label = f"{e.detector} (threshold: {e.at_threshold.false_alarm_rate:.1%} false alarms"
        if not math.isnan(e.operation_false_alarm_rate):
            label += f", {e.operation_false_alarm_rate:.1%} on normal operation"
        label += ")"
        bars = ax.bar(positions + offset, values, width, label=label)
        ax.bar_label(bars, fmt="%.0f%%", fontsize="x-small")
    ax.set_xticks(positions, groups)
    ax.set_ylim(0, 125)
    ax.set_ylabel("recall %")
    ax.set_title("Recall at fixed false-alarm rates and at each operating threshold")
    ax.legend(fontsize="x-small", loc="upper left", ncol=2)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_contributions(
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


def plot_examples(sensors: list[str], examples: list[Example], path: Path) -> Path:
    """Each example's top sensors by share of its error, labelled (the sensor at fault, when
    known, is red and always shown)."""
    plt = _pyplot()
    columns = 2 if len(examples) > 1 else 1
    rows = math.ceil(len(examples) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 2.9 * rows), squeeze=False)
    for ax, example in zip(axes.ravel(), examples, strict=False):
        errors = np.asarray(example.errors, dtype=np.float64)
        total = float(errors.sum()) or 1.0
        order = [int(i) for i in np.argsort(-errors, kind="stable")[:TOP_EXAMPLE_SENSORS]]
        if example.highlight is not None and example.highlight not in order:
            order[-1] = example.highlight
        shares = 100 * errors[order] / total
        colours = ["tab:red" if i == example.highlight else "tab:blue" for i in order]
        positions = np.arange(len(order))[::-1]
        ax.barh(positions, shares, color=colours)
        ax.set_yticks(positions, [sensors[i] for i in order], fontsize="small")
        caption = example.title
        if example.highlight is not None:
            caption += f"; at fault (red): {sensors[example.highlight]}"
        ax.set_title(caption, fontsize="small")
        ax.set_xlabel("share of the reading's squared error %")
    for ax in axes.ravel()[len(examples) :]:
        ax.axis("off")
    fig.suptitle(f"Detected anomalous readings: top {TOP_EXAMPLE_SENSORS} sensors of each")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def score_axis(ax: Any, top: float) -> None:
    """Score / threshold from 0 to just above ``top`` (at least 1): linear below the threshold,
    logarithmic above it, and labelled there too (symlog alone labels only decades)."""
    ax.set_yscale("symlog", linthresh=1.0)
    limit = max(top, 1.0) * 1.15  # room for the alert marks above the highest
    decades = 10.0 ** np.arange(0, math.floor(math.log10(limit)) + 1)
    # 1, 2, 5 in each decade, so a score just above the threshold can be read off
    above = [d * step for d in decades for step in (1.0, 2.0, 5.0) if d * step <= limit]
    if len(above) < 2 and limit >= 1.5:  # a top below 2: one more to read it by
        above.append(1.5)
    ticks = [0.0, 0.25, 0.5, 0.75, *above]
    ax.set_yticks(ticks, [f"{tick:g}" for tick in ticks])
    ax.set_ylim(0.0, limit)


def plot_timelines(timelines: list[Timeline], path: Path) -> Path:
    """Smoothed score / threshold over readings: labelled stretches shaded, onsets dashed,
    alert starts as triangles, the threshold at 1."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(timelines), 1, figsize=(12.5, 2.8 * len(timelines)), squeeze=False)
    for ax, line in zip(axes[:, 0], timelines, strict=True):
        x = np.arange(line.smoothed.size)
        ax.plot(x, line.smoothed, linewidth=0.8, color="tab:blue", label=line.smoothing)
        ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="threshold")
        labels = np.asarray(line.labels, dtype=bool)
        edges = np.diff(np.r_[0, labels.astype(np.int8), 0])
        starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        for i, (a, b) in enumerate(zip(starts, stops, strict=True)):
            ax.axvspan(a, b, color="tab:orange", alpha=0.2, label="labelled" if i == 0 else None)
            ax.axvline(a, color="tab:red", linewidth=1, label="onset" if i == 0 else None)
        top = max(float(np.nanmax(line.smoothed)) if line.smoothed.size else 1.0, 1.0)
        if line.alerts.size:
            ax.plot(line.alerts, np.full(line.alerts.size, top * 1.05), "v",
                    color="tab:green", markersize=5, label="alert starts")  # fmt: skip
        score_axis(ax, top)
        ax.set_ylabel("score / threshold\n(log scale above 1)")
        ax.set_title(line.title, fontsize="small")
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.005, 1.0))
    axes[-1, 0].set_xlabel("reading (scored readings of the run, in order)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
