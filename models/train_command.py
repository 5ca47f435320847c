"""``python -m models train``: reads the data, trains (models.train), exports the artifact
(models.export) and prints the summary. Kept apart from training so that export can build
on training's results without training depending on export.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from models import ignored_columns
from models.artifact_target import artifact_dir_problem, default_name, next_version
from models.data import load_readings
from models.data_warnings import clock_warning, gap_warning, repeat_warning, time_unit_warning
from models.export import export_artifact
from models.fitting import TrainingDiverged
from models.injected import TooShortToInject
from models.inputs import BeyondFloat32, ConstantSensorMoves
from models.lone_spike import check_trained
from models.operating_point import CANDIDATES as SMOOTHINGS
from models.out_of_time import calibrate_out_of_time
from models.readings import DataError, Readings, default_sensor_names
from models.selection import (
    MIN_READINGS,
    Selection,
    autocorrelation_window,
    choose_smoothing,
    select,
)
from models.selection_rule import CandidateScore, blind_warning
from models.smoothing_choice import split_warning
from models.threshold import CalibrationUnscorable
from models.train import TrainResult, train
from models.train_config import InvalidSettings
from models.train_options import config_from_args, selection_configs, unused_options
from models.train_parser import DefaultsWhereThereAreSome, add_arguments, option_name
from models.train_summary import print_candidate, print_epoch, print_summary, smoothing_choice
from service.scoring.artifact import sha256_array
from service.scoring.artifact_writer import ArtifactSwapFailed


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train, calibrate and export a model artifact",
        description="Train a model on normal readings (by default the candidate that the "
        "selection rule picks on faults injected into normal data: docs/training.md), set "
        "its threshold on calibration readings and write the artifact to OUT/NAME/VERSION/.",
        formatter_class=DefaultsWhereThereAreSome,
    )
    add_arguments(parser)
    parser.set_defaults(run=run)


def _with_chosen_smoothing(
    result: TrainResult,
    readings: Readings,
    calibration: Readings | None,
    smoothings: tuple[str, ...],
) -> tuple[TrainResult, CandidateScore | None]:
    values = (
        calibration.values
        if calibration is not None
        else readings.values[slice(*result.splits["calibration"])]
    )
    training = readings.values if calibration is None else None
    chosen, score = choose_smoothing(result, values, smoothings, training_values=training)
    if score is None:
        print(
            f"smoothing none: the calibration run is too short (under {MIN_READINGS} scored "
            "readings) to weigh smoothings on injected faults",
            file=sys.stderr,
        )
    else:
        print(smoothing_choice(score, len(smoothings)), file=sys.stderr)
    return chosen, score


def run(args: argparse.Namespace) -> int:
    if args.name is None:
        args.name = default_name(args.data)
    if args.version is None:
        args.version = next_version(args.out / args.name)
    if args.families is not None and args.family != "auto":
        print(
            f"error: --families chooses among families; --family {args.family} already names one",
            file=sys.stderr,
        )
        return 2
    try:
        config = config_from_args(args)
    except InvalidSettings as exc:
        print(f"error: {exc.naming(option_name)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    unused = unused_options(args, option_name)
    if unused is not None:
        print(f"error: {unused}", file=sys.stderr)
        return 2
    problem = artifact_dir_problem(args.out, args.name, args.version, force=args.force)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    artifact_dir = args.out / args.name / args.version
    ignore = args.ignore_columns or ()
    try:
        readings = load_readings(args.data, transpose=args.transpose, drop_columns=ignore)
        calibration = (
            None
            if args.calibration_data is None
            else load_readings(
                args.calibration_data, transpose=args.calibration_transpose, drop_columns=ignore
            )
        )
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    read = [(args.data, readings.ignored)]
    if calibration is not None:
        read.append((args.calibration_data, calibration.ignored))
    mistaken = ignored_columns.unfound(args.ignore_columns, read)
    if mistaken is not None:
        print(f"error: {mistaken}", file=sys.stderr)
        return 2
    data_warnings = [
        warning
        for warning in (
            _orientation_warning(args.data, readings, "--transpose", args.transpose),
            _orientation_warning(
                args.calibration_data,
                calibration,
                "--calibration-transpose",
                args.calibration_transpose,
            ),
            clock_warning(readings),
            *(
                time_unit_warning(source.source, source.timestamps)
                for source in (readings, calibration)
                if source is not None
            ),
            *(
                check(source)
                for source in (readings, calibration)
                if source is not None
                for check in (gap_warning, repeat_warning)
            ),
        )
        if warning is not None
    ]
    for warning in data_warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if calibration is not None and calibration.sensors != readings.sensors:
        if set(calibration.sensors) != set(readings.sensors):
            print(
                f"error: {args.calibration_data}: "
                f"{sensors_mismatch(calibration.sensors, readings.sensors)} (the calibration "
                "data needs the training data's sensors, by name, in any order)",
                file=sys.stderr,
            )
            return 2
        calibration = _lined_up(calibration, readings.sensors)
    training_sha256 = sha256_array(readings.values)
    calibration_sha256 = None if calibration is None else sha256_array(calibration.values)
    if calibration_sha256 == training_sha256:
        print(
            "warning: --calibration-data holds the same readings as --data: the threshold is "
            "set on readings the model was trained on, so it sits too low and production will "
            "see more false alarms than the quantile promises",
            file=sys.stderr,
        )
    if calibration is not None and calibration.n_readings < config.window:
        # Checked here, not left to train(): it would say so only after training, unnamed.
        print(
            f"error: {args.calibration_data}: {calibration.n_readings} readings are fewer than "
            f"one window of {config.window} (--window)",
            file=sys.stderr,
        )
        return 2
    for name, source in (("training", readings), ("calibration", calibration)):
        flagged = _labelled_anomalous(source)
        if flagged:
            print(
                f"warning: {flagged} {name} readings are labelled anomalous; the model and "
                "its threshold assume normal operation only",
                file=sys.stderr,
            )
    print(
        f"training on {readings.n_readings} readings x {readings.n_sensors} "
        f"sensor{'s' if readings.n_sensors != 1 else ''} "
        f"from {readings.source}",
        file=sys.stderr,
    )
    configs = selection_configs(
        args, config, autocorrelation_window(readings.values), readings.n_sensors
    )
    if not configs:
        print(
            f"error: --families {','.join(args.families)} leaves no candidate with these "
            "options (--window, --residual)",
            file=sys.stderr,
        )
        return 2
    smoothings = SMOOTHINGS if args.smoothing == "auto" else (config.smoothing,)
    selection: Selection | None = None
    judged: CandidateScore | None = None  # what the chosen option did with injected faults
    try:
        if len(configs) == 1:
            result = train(
                readings.values,
                readings.sensors,
                configs[0],
                calibration_values=None if calibration is None else calibration.values,
                calibration_source=None if calibration is None else calibration.source,
                progress=print_epoch,
            )
            if len(smoothings) > 1:
                result, judged = _with_chosen_smoothing(result, readings, calibration, smoothings)
        else:
            print(
                f"choosing among {len(configs)} candidates x {len(smoothings)} smoothings by "
                "the faults they catch when injected into the calibration run",
                file=sys.stderr,
            )
            selection = select(
                readings.values,
                readings.sensors,
                config,
                calibration_values=None if calibration is None else calibration.values,
                calibration_source=None if calibration is None else calibration.source,
                configs=configs,
                smoothings=smoothings,
                report=print_candidate,
            )
            result = selection.result
            result.metrics["selection"] = selection.summary()
            judged = selection.ranking[0]
        if calibration is None:
            result = calibrate_out_of_time(result, readings.values)
        given = calibration is not None
        found = (
            []
            if judged is None
            else [
                blind_warning(judged, calibration_given=given),
                split_warning(judged, calibration_given=given),
            ]
        )
        # Printed with the summary's warnings, kept in the manifest.
        warned = [warning for warning in found if warning is not None]
        if warned:
            result.metrics["warnings"] = [*result.metrics.get("warnings", []), *warned]
    except BeyondFloat32 as exc:
        holder = args.data if exc.data == "training" else args.calibration_data
        print(f"error: {holder}: {exc.detail}", file=sys.stderr)
        return 2
    except TrainingDiverged as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConstantSensorMoves as exc:  # a separate calibration file names itself
        print(f"error: {'' if args.calibration_data else f'{args.data}: '}{exc}", file=sys.stderr)
        return 2
    except (CalibrationUnscorable, TooShortToInject) as exc:
        unscorable = args.calibration_data or f"{args.data} (its calibration tail)"
        print(f"error: {unscorable}: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        # The settings were checked when parsed and both files above, so what training
        # refuses is the training data: too short for the splits or for the plane.
        print(f"error: {args.data}: {exc}", file=sys.stderr)
        return 2
    spike, spiked = check_trained(
        result, readings.values, None if calibration is None else calibration.values
    )
    result.metrics["lone_spike"] = spike.as_dict() | {"readings": spiked}
    training_data: dict[str, Any] = {
        "training": {
            "source": readings.source,
            "shape": list(readings.values.shape),
            "sha256": training_sha256,
        }
    }
    if calibration is not None:
        training_data["calibration"] = {
            "source": calibration.source,
            "shape": list(calibration.values.shape),
            "sha256": calibration_sha256,
        }
    try:
        manifest = export_artifact(
            result,
            artifact_dir,
            name=args.name,
            version=args.version,
            training_data_sha256=training_sha256,
            training_data=training_data,
        )
    except ArtifactSwapFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        print(
            f"error: could not write {artifact_dir} ({exc}); any model already there is unchanged",
            file=sys.stderr,
        )
        return 1
    print_summary(
        result,
        manifest.files,
        artifact_dir,
        separate_calibration=calibration is not None,
        data_warnings=data_warnings,
        lone_spike=(spike, spiked),
    )
    return 0


def _orientation_warning(
    path: Path | None, readings: Readings | None, flag: str, transposed: bool
) -> str | None:
    """A hint when a header-less file gives fewer readings than sensors: most likely it is
    stored sensors x readings (TEP's d00.dat is 52 x 500) and was read the wrong way round.
    Only a hint, since a short recording of many sensors is legitimate; a CSV header says
    which way round it is."""
    if path is None or readings is None or path.suffix.lower() == ".csv":
        return None
    if readings.n_readings >= readings.n_sensors:
        return None
    advice = (
        f"if it is stored readings x sensors, drop {flag}"
        if transposed
        else f"if it is stored sensors x readings, pass {flag}"
    )
    return (
        f"{path} gives {readings.n_readings} readings x {readings.n_sensors} sensors, fewer "
        f"readings than sensors: {advice}"
    )


def _labelled_anomalous(readings: Readings | None) -> int:
    if readings is None or "anomaly" not in readings.labels:
        return 0
    column = readings.labels["anomaly"]
    if column.dtype.kind != "f":
        return 0
    return int(np.nansum(column > 0))


def _lined_up(calibration: Readings, sensors: Sequence[str]) -> Readings:
    """The calibration readings with their columns in the training data's order, as evaluate
    lines a file up by name: an export may order the same columns differently."""
    position = {name: i for i, name in enumerate(calibration.sensors)}
    order = [position[name] for name in sensors]
    return replace(calibration, values=calibration.values[:, order], sensors=list(sensors))


def sensors_mismatch(found: Sequence[str], expected: Sequence[str]) -> str:
    """How a file's sensors differ from the training data's, as sets (order is not compared:
    the calibration file is lined up by name).

    >>> sensors_mismatch(["a", "x", "b"], ["b", "a", "c"])
    "the sensors differ from the training data's (missing: 'c'; extra: 'x')"
    >>> sensors_mismatch(["a", "b"], ["a", "b", "c"])
    "2 sensors, the training data's 3 (missing: 'c')"
    """
    parts = []
    for what, names in (
        ("missing", [name for name in expected if name not in set(found)]),
        ("extra", [name for name in found if name not in set(expected)]),
    ):
        if names:
            listed = ", ".join(repr(name) for name in names[:5])
            parts.append(f"{what}: {listed}" + (", ..." if len(names) > 5 else ""))
    counts = (
        f"{len(found)} sensors, the training data's {len(expected)}"
        if len(found) != len(expected)
        else "the sensors differ from the training data's"
    )
    headerless = list(found) == default_sensor_names(len(found))
    hint = "; a file without a header row has no names to match" if headerless else ""
    return f"{counts} ({'; '.join(parts)}{hint})"
