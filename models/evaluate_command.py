"""``python -m models evaluate``: score normal and labelled readings with an artifact and write
its report (the evaluation itself is ``models.evaluate``)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from models import ignored_columns
from models.evaluate import TooFewReadings, evaluate_artifact
from models.evaluate_data import (
    DEFAULT_KINDS_COLUMN,
    DEFAULT_LABELS_COLUMN,
    baseline_data,
    read_labelled,
    synthetic_sets,
)
from models.evaluate_events import summary_sentence
from models.metrics import DetectorEvaluation
from models.readings import DataError
from models.report import (
    check_report_folder,
    percent,
    write_report,
)
from service.scoring.artifact import (
    ArtifactError,
    load_artifact,
)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate an artifact on normal and labelled anomalous readings",
        description="Score normal and labelled anomalous readings with an artifact and write "
        "report.json, report.md and PNG plots: ROC/PR-AUC, rates at the operating threshold, "
        "recall at fixed false-alarm rates, separability, a capacity diagnosis and the PCA "
        "baseline (T², SPE) side by side.",
    )
    parser.add_argument("--model", type=Path, required=True, help="artifact folder")
    data = parser.add_argument_group("data (either --normal and --anomalous, or --synthetic)")
    data.add_argument("--normal", type=Path, help="normal readings (.csv, .dat, .npy)")
    data.add_argument(
        "--anomalous",
        type=Path,
        help="labelled readings; without a labels column every reading counts as anomalous "
        "(a warning says so)",
    )
    data.add_argument("--transpose", action="store_true", help="both files are sensors x readings")
    data.add_argument(
        "--normal-transpose", action="store_true", help="--normal is sensors x readings"
    )
    data.add_argument(
        "--anomalous-transpose", action="store_true", help="--anomalous is sensors x readings"
    )
    data.add_argument(
        "--labels-column",
        help=f"column of 0/1 ground truth (default: {DEFAULT_LABELS_COLUMN}); when given, the "
        "anomalous file must have it",
    )
    data.add_argument(
        "--kinds-column",
        help=f"column of each reading's anomaly kind (default: {DEFAULT_KINDS_COLUMN}); when "
        "given, the anomalous file must have it",
    )
    ignored_columns.add_option(
        data, "--normal, --anomalous and the PCA baseline's --train and --calibration-data"
    )
    data.add_argument(
        "--synthetic",
        action="store_true",
        help="fresh synthetic-plant runs (seeds 9001/9002), faults of every kind injected",
    )
    data.add_argument(
        "--readings", type=int, default=20_000, help="readings per synthetic run (default: 20000)"
    )
    base = parser.add_argument_group(
        "PCA baseline (default: the training and calibration data the manifest records)"
    )
    base.add_argument("--train", type=Path, help="the model's training data file")
    base.add_argument(
        "--train-transpose", action="store_true", help="--train is sensors x readings"
    )
    base.add_argument("--calibration-data", type=Path, help="the model's calibration file")
    base.add_argument(
        "--calibration-transpose",
        action="store_true",
        help="--calibration-data is sensors x readings",
    )
    base.add_argument("--no-baseline", action="store_true", help="skip the PCA baseline")
    parser.add_argument(
        "--out", type=Path, default=None, help="report folder (default: reports/<name>-<version>)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    try:
        artifact = load_artifact(args.model)
    except ArtifactError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    manifest = artifact.manifest
    out = args.out or Path("reports") / f"{manifest.name}-{manifest.version}"
    try:
        check_report_folder(out)
    except OSError as exc:
        print(f"error: --out {out}: {exc}", file=sys.stderr)
        return 2
    if args.synthetic and (args.normal is not None or args.anomalous is not None):
        print(
            "error: --synthetic evaluates on fresh synthetic runs: pass it or --normal and "
            "--anomalous, not both",
            file=sys.stderr,
        )
        return 2
    if args.synthetic and args.ignore_columns:
        print(
            "error: --ignore-columns leaves columns out of --normal and --anomalous files; "
            "--synthetic reads none",
            file=sys.stderr,
        )
        return 2
    ignore = args.ignore_columns or ()
    try:
        if args.synthetic:
            normal, anomalous = synthetic_sets(manifest, n_readings=args.readings)
        elif args.normal is None or args.anomalous is None:
            print("error: pass --normal and --anomalous, or --synthetic", file=sys.stderr)
            return 2
        else:
            normal = read_labelled(
                args.normal,
                manifest.sensors,
                transpose=args.transpose or args.normal_transpose,
                labels_column=args.labels_column,
                kinds_column=args.kinds_column,
                anomalous=False,
                ignore=ignore,
            )
            anomalous = read_labelled(
                args.anomalous,
                manifest.sensors,
                transpose=args.transpose or args.anomalous_transpose,
                labels_column=args.labels_column,
                kinds_column=args.kinds_column,
                anomalous=True,
                ignore=ignore,
            )
            mistaken = ignored_columns.unfound(
                args.ignore_columns,
                [(args.normal, normal.ignored), (args.anomalous, anomalous.ignored)],
            )
            if mistaken is not None:
                print(f"error: {mistaken}", file=sys.stderr)
                return 2
            if anomalous.assumption:
                print(f"warning: {anomalous.assumption}", file=sys.stderr)
        baseline, baseline_note = None, "skipped (--no-baseline)"
        if not args.no_baseline:
            try:
                baseline = baseline_data(
                    manifest,
                    train_file=args.train,
                    train_transpose=args.train_transpose,
                    calibration_file=args.calibration_data,
                    calibration_transpose=args.calibration_transpose,
                    ignore=ignore,
                )
            except DataError as exc:
                baseline_note = f"the model's training data is not available ({exc})"
                print(
                    f"warning: no PCA baseline: {exc} (give the model's training and "
                    "calibration files with --train and --calibration-data; --no-baseline "
                    "says it is skipped on purpose)",
                    file=sys.stderr,
                )
        result = evaluate_artifact(
            artifact, normal, anomalous, baseline=baseline, baseline_note=baseline_note
        )
    except TooFewReadings as exc:
        more = f" (--readings {args.readings}: try more)" if args.synthetic else ""
        print(f"error: {exc}{more}", file=sys.stderr)
        return 2
    except (DataError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        written = write_report(result.report, out)
    except OSError as exc:
        print(f"error: writing the report: {exc}", file=sys.stderr)
        return 2
    model = result.model.name
    for warning in result.reused_data + result.time_units:  # the report's notes say them too
        print(f"warning: {warning.removeprefix('WARNING: ')}", file=sys.stderr)
    print(summary_lines(result.evaluations))
    print(f"normal readings ({model}): {result.normal_rate.message}")
    print(f"operating range ({model}): {result.operating_range.message}")
    print(f"lone spike ({model}): {result.lone_spike.message}")
    events = result.report.context["alerts (event level)"]
    print(f"alerts ({events['rule']}): {summary_sentence(events)}")
    print(f"\nreport: {written['markdown']}", file=sys.stderr)
    return 0


def summary_lines(evaluations: Sequence[DetectorEvaluation]) -> str:
    width = max(12, *(len(e.detector) for e in evaluations))
    lines = [
        f"{'detector':<{width}} {'ROC-AUC':>8} {'PR-AUC':>7} {'precision':>9} {'recall':>7} "
        f"{'F1':>6} {'FAR':>7} {'MDR':>7} {'FAR normal file':>15}"
    ]
    for e in evaluations:
        at = e.at_threshold
        lines.append(
            f"{e.detector:<{width}} {_number(e.roc_auc):>8} {_number(e.pr_auc):>7} "
            f"{_number(at.precision):>9} {_number(at.recall):>7} {_number(at.f1):>6} "
            f"{percent(at.false_alarm_rate, 2):>7} {percent(at.missed_detection_rate, 2):>7} "
            f"{percent(e.operation_false_alarm_rate, 2):>15}"
        )
    lines += ["", *[f"capacity ({e.detector}, pooled): {e.capacity.message}" for e in evaluations]]
    lines += [f"per kind ({e.detector}): {e.verdict_summary}" for e in evaluations if e.verdicts]
    return "\n".join(lines)


def _number(value: float) -> str:
    """Three decimals, ``n/a`` when undefined (a precision with nothing flagged)."""
    return f"{value:.3f}" if math.isfinite(value) else "n/a"
