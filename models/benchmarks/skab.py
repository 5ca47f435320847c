"""SKAB, its own protocol: per ``valve1`` file the first 400 rows are training, the rest is
test; TP/FP/FN/TN are summed over files; F1, false-alarm rate (FAR) and missed-alarm rate
(MAR) are reported together. The threshold comes from training rows only.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from models.benchmarks.common import (
    DETECTORS,
    SELECTED_SETTINGS,
    BenchmarkDataMissing,
    DetectorSet,
    describe_settings,
    model_label,
    progress_printer,
    require,
    shown,
    train_as_default,
)
from models.data import load_readings
from models.metrics import (
    BinaryMetrics,
)
from models.plots import plot_grouped_bars
from models.readings import DataError, Readings
from models.report import (
    EvaluationReport,
    Figure,
    Table,
    write_report,
)
from models.train_config import TrainConfig

SKAB_TRAIN_ROWS = 400
SKAB_QUANTILE = 0.99
SKAB_PUBLISHED = {
    # F1, FAR %, MAR % on all 34 SKAB runs (the leaderboard in skab/README.md)
    "Conv-AE": (0.78, 13.6, 28.0),
    "PCA T²+Q": (0.76, 26.6, 24.9),
    "LSTM-AE": (0.74, 30.0, 25.9),
    "Isolation Forest": (0.29, 2.6, 82.9),
}


# --------------------------------------------------------------------------- SKAB


@dataclass(frozen=True)
class SkabFile:
    name: str
    readings: Readings
    labels: np.ndarray


def load_skab(data_dir: Path) -> tuple[list[SkabFile], Readings]:
    folder = require(data_dir / "skab", "SKAB data folder")
    valve = require(folder / "valve1", "SKAB valve1 folder")
    paths = sorted(valve.glob("*.csv"), key=lambda p: (len(p.stem), p.stem))
    if not paths:
        raise BenchmarkDataMissing(f"no CSV files in {valve}")
    files: list[SkabFile] = []
    for path in paths:
        readings = load_readings(path)
        if "anomaly" not in readings.labels:
            raise DataError(path, "no 'anomaly' column")
        labels = readings.labels["anomaly"]
        if labels.dtype.kind != "f" or not np.isin(labels, (0.0, 1.0)).all():
            raise DataError(path, "labels must be 0/1 in every row", column="anomaly")
        if files and readings.sensors != files[0].readings.sensors:
            raise DataError(path, f"sensors differ from {files[0].name}'s")
        files.append(SkabFile(path.name, readings, labels.astype(bool)))
    anomaly_free = load_readings(
        require(folder / "anomaly-free" / "anomaly-free.csv", "SKAB anomaly-free.csv")
    )
    if anomaly_free.sensors != files[0].readings.sensors:
        raise DataError(anomaly_free.source, f"sensors differ from {files[0].name}'s")
    return files, anomaly_free


@dataclass
class SkabVariant:
    """One way of training and thresholding, scored over every file."""

    name: str
    description: str
    counts: dict[str, BinaryMetrics]
    per_file: dict[str, dict[str, BinaryMetrics]] = field(default_factory=dict)
    models: dict[str, tuple[str, float]] = field(default_factory=dict)
    """Per file, the model that scored it and its threshold."""


def _flags(scores: dict[str, np.ndarray], limits: dict[str, float]) -> dict[str, np.ndarray]:
    flags = {name: scores[name] > limits[name] for name in DETECTORS}
    flags["pca_t2_or_spe"] = flags["pca_t2"] | flags["pca_spe"]
    return flags


def run_skab(
    data_dir: Path,
    config: TrainConfig | None = None,
    *,
    verbose: bool = True,
    max_files: int | None = None,
    select_model: bool = False,
) -> list[SkabVariant]:
    """``max_files`` runs the protocol on the first files only (a quick check, not the
    benchmark)."""
    files, anomaly_free = load_skab(data_dir)
    files = files[:max_files]
    config = replace(config or TrainConfig(), quantile=SKAB_QUANTILE)
    names = [*DETECTORS, "pca_t2_or_spe"]
    zero = BinaryMetrics(0, 0, 0, 0)

    # A: SKAB's per-file protocol. A model per file trained on its first 400 rows, with the
    # out-of-time threshold train gives a run without calibration data; PCA's limits are the
    # quantile of the calibration tail of those rows.
    per_file = SkabVariant(
        "per-file",
        f"a model per file on its first {SKAB_TRAIN_ROWS} rows (time split train / validation "
        f"/ calibration); the model's limit out of time (the {SKAB_QUANTILE} quantile of "
        "each half of those rows scored by a model trained on the other half, as `train` "
        "sets it without calibration data), PCA's at the same quantile of the calibration "
        "tail",
        dict.fromkeys(names, zero),
    )
    # B: normal behaviour learned once from anomaly-free.csv; each file's limit is then set
    # on its own first 400 rows (still training rows only), since every run drifts a little.
    sensors = files[0].readings.sensors  # load_skab checked every file has them
    shared = train_as_default(
        anomaly_free.values,
        sensors,
        config,
        select_model=select_model,
        progress=progress_printer("skab anomaly-free") if verbose else None,
    )
    recalibrated = SkabVariant(
        "anomaly-free model",
        "one model trained on anomaly-free.csv; per file, limits at the "
        f"{SKAB_QUANTILE} quantile of that file's first {SKAB_TRAIN_ROWS} rows",
        dict.fromkeys(names, zero),
    )
    # C: the same anomaly-free model with its own threshold (the quantile of its calibration
    # tail of anomaly-free.csv), judged on every row of the other runs: does a model of the
    # rig's normal behaviour hold its false-alarm rate on other runs of the same rig?
    start, stop = shared.splits["calibration"]
    detectors_c = DetectorSet.build(
        shared,
        anomaly_free.values,
        anomaly_free.values[start:stop],
        quantile=SKAB_QUANTILE,
        calibration_source="calibration tail of anomaly-free.csv",
    )
    own_threshold = SkabVariant(
        "anomaly-free model, own threshold",
        "one model trained on anomaly-free.csv with its limits at the "
        f"{SKAB_QUANTILE} quantile of that file's calibration tail, judged on every row of "
        "each file (not only the test rows): FAR is the share of the other runs' normal rows "
        "it flags",
        dict.fromkeys(names, zero),
    )
    for file in files:
        values = file.readings.values
        head = values[:SKAB_TRAIN_ROWS]
        # Score the test rows with the preceding rows as context (first window-1 dropped).
        test_labels = file.labels[SKAB_TRAIN_ROWS:]

        result = train_as_default(
            head,
            sensors,
            config,
            select_model=select_model,
            calibration_source=f"{file.name} rows tail of 0-399",
        )
        start, stop = result.splits["calibration"]
        detectors = DetectorSet.build(
            result,
            head,
            head[start:stop],
            quantile=SKAB_QUANTILE,
            calibration_source="calibration tail of the first 400 rows",
            own_threshold=True,
        )
        _accumulate(per_file, file.name, detectors, values, test_labels)

        detectors_b = DetectorSet.build(
            shared,
            anomaly_free.values,
            head,
            quantile=SKAB_QUANTILE,
            calibration_source=f"{file.name} first {SKAB_TRAIN_ROWS} rows",
        )
        _accumulate(recalibrated, file.name, detectors_b, values, test_labels)
        _accumulate(own_threshold, file.name, detectors_c, values, file.labels, first_row=0)
        if verbose:
            counts = per_file.per_file[file.name]["autoencoder"]
            print(
                f"  [skab] {file.name}: per-file model F1 {counts.f1:.2f} "
                f"(best epoch {result.best_epoch})",
                file=sys.stderr,
            )
    return [per_file, recalibrated, own_threshold]


def _accumulate(
    variant: SkabVariant,
    file_name: str,
    detectors: DetectorSet,
    values: np.ndarray,
    labels: np.ndarray,
    *,
    first_row: int = SKAB_TRAIN_ROWS,
) -> None:
    """Counts on rows ``first_row ..`` (``labels`` are theirs), each scored with the
    rows before it as context; rows before the model's first full window are not scored."""
    context = detectors.result.window - 1
    skipped = max(0, context - first_row)
    scores = detectors.scores(values[max(0, first_row - context) :])
    test_labels = labels[skipped:]
    flags = _flags(scores, detectors.limits)
    variant.per_file[file_name] = {}
    variant.models[file_name] = (
        model_label(detectors.result),
        float(detectors.limits["autoencoder"]),
    )
    for name, flagged in flags.items():
        counts = BinaryMetrics.from_flags(flagged, test_labels)
        variant.per_file[file_name][name] = counts
        variant.counts[name] = variant.counts[name] + counts


def skab_table(variants: list[SkabVariant], n_files: int) -> Table:
    rows: list[list[Any]] = []
    for variant in variants:
        for name, counts in variant.counts.items():
            rows.append(
                [
                    f"{shown(name)} — {variant.name}",
                    counts.f1,
                    100 * counts.false_alarm_rate,
                    100 * counts.missed_detection_rate,
                    f"{counts.tp}/{counts.fp}/{counts.fn}/{counts.tn}",
                ]
            )
    for name, (f1, far, mar) in SKAB_PUBLISHED.items():
        rows.append([f"{name} (published, 34 runs)", f1, far, mar, "n/a"])
    notes = "; ".join(f"{v.name}: {v.description}" for v in variants)
    return Table(
        title=f"SKAB valve1 ({n_files} files): F1, false-alarm rate %, missed-alarm rate %",
        columns=["detector", "F1", "FAR %", "MAR %", "TP/FP/FN/TN"],
        digits={"F1": 2, "FAR %": 1, "MAR %": 1},
        rows=rows,
        note=f"Counts summed over files, test = rows after the first {SKAB_TRAIN_ROWS} (every "
        f"row for the anomaly-free model with its own threshold). {notes}. "
        "The published leaderboard covers all 34 SKAB runs; only valve1 is available here.",
    )


def skab_per_file_table(variant: SkabVariant) -> Table:
    rows: list[list[Any]] = []
    for file_name, by_detector in variant.per_file.items():
        row: list[Any] = [file_name, *variant.models[file_name]]
        for name in ("autoencoder", "pca_t2_or_spe"):
            counts = by_detector[name]
            row += [counts.f1, 100 * counts.false_alarm_rate, 100 * counts.missed_detection_rate]
        rows.append(row)
    scores = ["model F1", "model FAR %", "model MAR %", "PCA T²∨SPE F1", "PCA FAR %", "PCA MAR %"]
    return Table(
        title=f"SKAB per file ({variant.name})",
        columns=["file", "model", "threshold", *scores],
        rows=rows,
        digits={"threshold": 4} | {c: (2 if "F1" in c else 1) for c in scores},
    )


def write_skab_report(
    variants: list[SkabVariant],
    table: Table,
    out_dir: Path,
    *,
    config: TrainConfig | None = None,
    selected: bool = False,
) -> dict[str, Path]:
    """``selected``: the models were chosen as ``train`` chooses by default (per file)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    series: dict[str, list[float]] = {}
    for variant in variants:
        counts = variant.counts["autoencoder"]
        series[f"model ({variant.name})"] = [
            100 * counts.f1,
            100 * counts.false_alarm_rate,
            100 * counts.missed_detection_rate,
        ]
    counts = variants[0].counts["pca_t2_or_spe"]
    series[f"PCA T²∨SPE ({variants[0].name})"] = [
        100 * counts.f1,
        100 * counts.false_alarm_rate,
        100 * counts.missed_detection_rate,
    ]
    for name in ("Conv-AE", "PCA T²+Q"):
        f1, far, mar = SKAB_PUBLISHED[name]
        series[f"{name} (published)"] = [100 * f1, far, mar]
    figure = plot_grouped_bars(
        out_dir / "skab_summary.png",
        ["F1 x 100 (higher is better)", "FAR % (lower)", "MAR % (lower)"],
        series,
        title="SKAB valve1: ours next to the published leaderboard",
        ylabel="%",
    )
    report = EvaluationReport(
        title="SKAB benchmark (valve1)",
        context={
            "protocol": f"per file: first {SKAB_TRAIN_ROWS} rows train, the rest test; "
            "TP/FP/FN/TN summed over files",
            "training settings": SELECTED_SETTINGS
            if selected
            else describe_settings(config or TrainConfig(), quantile=SKAB_QUANTILE),
        },
        detectors=[],
        tables=[table, *(skab_per_file_table(variant) for variant in variants[:2])],
        figures=[Figure(figure.name, "F1, FAR and MAR next to the published leaderboard")],
    )
    return write_report(report, out_dir)
