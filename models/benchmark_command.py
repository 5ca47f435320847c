"""``python -m models benchmark tep|skab``: a published real-data protocol with the default
settings, its figures printed and written as a report (see ``models/benchmarks/``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from models.benchmarks.common import DATA_DIR_ENV, REPO_ROOT, default_data_dir, render_table
from models.benchmarks.nab import nab_table, run_nab, write_nab_report
from models.benchmarks.skab import run_skab, skab_table, write_skab_report
from models.benchmarks.tep import run_tep
from models.benchmarks.tep_report import far_table, target_lines, tep_table, write_tep_report
from models.evaluate_model import ModelForm
from models.readings import DataError
from models.report import (
    check_report_folder,
)
from models.train_config import FAMILIES, TrainConfig
from models.train_options import family_list


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "benchmark",
        help="run a published real-data protocol (TEP, SKAB, NAB) with the default settings",
        description="Train with the default settings on a public dataset's normal data and "
        "report detection figures next to our PCA and the published ones (TEP: per-fault "
        "missed detection rate and false alarms on independent normal runs at 95% and 99% "
        "limits; SKAB: F1, FAR, MAR per its per-file protocol; NAB: alerts against labelled "
        "windows beside randomly placed alerts).",
    )
    parser.add_argument(
        "dataset",
        choices=("tep", "skab", "nab"),
        help="Tennessee Eastman Process, Skoltech Anomaly Benchmark or Numenta Anomaly Benchmark",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help=f"folder holding tep/, skab/ and nab/ (default: ${DATA_DIR_ENV} or ../shared/data)",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="report folder (default: reports/<dataset>)"
    )
    parser.add_argument("--quiet", action="store_true", help="no per-epoch progress lines")
    parser.add_argument(
        "--family",
        choices=("auto", *FAMILIES),
        default="auto",
        help="auto: the model `train` makes by default (chosen on the dataset's normal "
        "training data and faults injected into it); a family: that one, as given",
    )
    parser.add_argument(
        "--families",
        type=family_list,
        default=None,
        help="tep, with --family auto: the model `train --families` makes, chosen by the "
        "same rule among these families only (comma-separated, e.g. autoencoder,conv,vae)",
    )
    parser.add_argument(
        "--window", type=int, default=None, help="with --family: readings per input"
    )
    parser.add_argument(
        "--smoothing",
        default="none",
        help="with --family: the declared score smoothing (none, mean:N, median:N, ewma:A)",
    )
    parser.add_argument(
        "--glitch-guard",
        action=argparse.BooleanOptionalAction,
        default=TrainConfig().glitch_guard,
        help="train the model with the glitch guard (see `train --help`), chosen as `train "
        "--glitch-guard` chooses with --family auto; not the default settings",
    )
    parser.add_argument(
        "--plane-variance",
        type=float,
        default=None,
        help="train an autoencoder with the linear PCA plane option (see `train --help`): "
        "without --family, an autoencoder over --window readings (1 unless given) with "
        "--smoothing, instead of the model `train` chooses; the targets then no longer apply",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or default_data_dir()
    out = args.out or REPO_ROOT / "reports" / args.dataset
    select_model = args.family == "auto" and args.plane_variance is None
    if args.families is not None and (args.dataset != "tep" or not select_model):
        print(
            "error: --families chooses the model of `benchmark tep` (with --family auto and "
            "no --plane-variance)",
            file=sys.stderr,
        )
        return 2
    if args.plane_variance is not None and args.family not in ("auto", "autoencoder"):
        print(
            f"error: --plane-variance is an autoencoder option: it needs --family autoencoder "
            f"(or none), not --family {args.family}",
            file=sys.stderr,
        )
        return 2
    if select_model and (args.window is not None or args.smoothing != "none"):
        print(
            "error: --window and --smoothing go with --family: the chosen model's own are "
            "what the benchmark measures",
            file=sys.stderr,
        )
        return 2
    try:
        family = "autoencoder" if args.family == "auto" else args.family
        window = args.window or (2 if family in ("cva", "dpca", "conv") else 1)
        config = (
            TrainConfig(glitch_guard=args.glitch_guard)
            if select_model
            else TrainConfig(
                family=family,
                window=window,
                smoothing=args.smoothing,
                plane_variance=args.plane_variance,
                glitch_guard=args.glitch_guard,
            )
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # --plane-variance is an autoencoder option: without --family it trains one, over the
    # window and with the smoothing given or their defaults, which the user did not choose.
    plane_implied = args.plane_variance is not None and args.family == "auto"
    if plane_implied:
        notice = plane_notice(config)
        print(f"--plane-variance applies to the autoencoder: {notice}", file=sys.stderr)
    try:
        check_report_folder(out)
    except OSError as exc:
        print(f"error: --out {out}: {exc}", file=sys.stderr)
        return 2
    try:
        if args.dataset == "tep":
            written = _tep(
                data_dir,
                config,
                out,
                verbose=not args.quiet,
                select_model=select_model,
                families=args.families,
                plane_implied=plane_implied,
            )
        elif args.dataset == "nab":
            nab = run_nab(data_dir, config, verbose=not args.quiet, select_model=select_model)
            written = write_nab_report(nab, out, selected=select_model)
            print(render_table(nab_table(nab)))
        else:
            variants = run_skab(data_dir, config, verbose=not args.quiet, select_model=select_model)
            table = skab_table(variants, len(variants[0].per_file))
            written = write_skab_report(variants, table, out, config=config, selected=select_model)
            print(render_table(table))
    except (DataError, OSError) as exc:  # bad or missing data; a report not written (disk full)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"\nreport: {written['markdown']}", file=sys.stderr)
    return 0


def _tep(
    data_dir: Path,
    config: TrainConfig,
    out: Path,
    *,
    verbose: bool,
    select_model: bool,
    families: tuple[str, ...] | None,
    plane_implied: bool = False,
) -> dict[str, Path]:
    bench = run_tep(data_dir, config, verbose=verbose, select_model=select_model, families=families)
    chosen = bench.detectors.result.config
    how = "(as given)"
    if select_model:
        how = (
            "(chosen as `train` chooses by default)"
            if families is None
            else f"(chosen as `train --families {','.join(families)}` chooses)"
        )
    if plane_implied:
        how = "(--plane-variance: an autoencoder)"
    residual = ", residual whitened" if chosen.residual == "whitened" else ""
    guard = ", glitch guard" if bench.detectors.result.glitch_limits is not None else ""
    form = ModelForm.of(bench.detectors.result)
    print(f"model: {form.name}{residual}, {form.smoothed_as}{guard} {how}", file=sys.stderr)
    written = write_tep_report(bench, out)
    print(render_table(tep_table(bench)))
    print("\n" + render_table(far_table(bench)))
    print()
    if not select_model or families is not None or chosen.glitch_guard:
        print("(not the default settings: the targets are set for those)")
    print("\n".join(target_lines(bench.acceptance(), families)))
    return written


def plane_notice(config: TrainConfig) -> str:
    """What ``--plane-variance`` without ``--family`` trains, said before the work.

    >>> plane_notice(TrainConfig(plane_variance=0.9)).split(" instead")[0]
    'training an autoencoder over 1 reading without smoothing'
    """
    form = ModelForm("autoencoder", config.window, config.smoothing)
    return (
        f"training an {form.name} {form.smoothed_as} instead of the "
        "model `train` chooses (give --family autoencoder, --window and --smoothing to choose "
        "them)"
    )
