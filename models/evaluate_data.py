"""The data ``models evaluate`` scores: labelled files in the model's sensor order, fresh
synthetic runs, and the training and calibration data the manifest records (for the PCA
baseline, checked by fingerprint)."""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.data import LABEL_COLUMNS, load_readings
from models.readings import DataError, Readings, default_sensor_names
from models.synthetic import generate_plant, inject_anomalies
from service.scoring.artifact import sha256_array
from service.scoring.manifest import Manifest


@dataclass(frozen=True)
class LabelledReadings:
    """Readings in the model's sensor order, with per-reading ground truth."""

    values: np.ndarray
    labels: np.ndarray  # bool
    kinds: np.ndarray  # str per reading ("" for normal readings)
    source: str
    faulty_sensor: np.ndarray | None = None
    """Column of the sensor at fault per reading (-1 where normal or unknown), when known."""
    assumption: str = ""
    """How the labels were assumed when the file carries none (said on stderr and in the
    report, since every figure rests on it)."""
    timestamps: np.ndarray | None = None
    """Per reading, when the file has them (false alerts per day of normal operation)."""
    ignored: tuple[str, ...] = ()
    """Columns of the file left out on request (``--ignore-columns``)."""


@dataclass(frozen=True)
class BaselineData:
    """The readings the PCA baseline is fitted and limited on: the artifact's own training
    split and calibration readings, located through the manifest and checked by fingerprint."""

    train: np.ndarray
    calibration: np.ndarray
    description: str


def align_sensors(readings: Readings, sensors: Sequence[str]) -> np.ndarray:
    """Columns in the model's order. Header-less files (x01, x02, ...) are taken positionally
    when the count matches, since they carry no names to match."""
    if list(readings.sensors) == list(sensors):
        return readings.values
    if readings.sensors == default_sensor_names(readings.n_sensors):
        if readings.n_sensors != len(sensors):
            hint = (
                " (its rows are the sensors: pass --transpose, or --normal-transpose or "
                "--anomalous-transpose for this file alone)"
                if readings.n_readings == len(sensors)
                else ""
            )
            raise DataError(
                readings.source,
                f"{readings.n_sensors} columns but the model has {len(sensors)} sensors{hint}",
            )
        return readings.values
    index = {name: i for i, name in enumerate(readings.sensors)}
    missing = [name for name in sensors if name not in index]
    if missing:
        raise DataError(
            readings.source,
            f"missing sensors the model needs: {', '.join(missing[:10])}"
            + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""),
        )
    return readings.values[:, [index[name] for name in sensors]]


DEFAULT_LABELS_COLUMN = "anomaly"
DEFAULT_KINDS_COLUMN = "anomaly_kind"


def labelled(
    readings: Readings,
    sensors: Sequence[str],
    *,
    labels_column: str,
    kinds_column: str | None,
    default_anomalous: bool,
    sensor_column_name: str | None = "anomaly_sensor",
) -> LabelledReadings:
    """Ground truth from ``labels_column`` when the file has it; otherwise every reading is
    ``default_anomalous`` (a fault run such as TEP's d01.dat is anomalous throughout)."""
    values = align_sensors(readings, sensors)
    by_name = {name.lower(): column for name, column in readings.labels.items()}
    column = by_name.get(labels_column.lower())
    assumption = ""
    if column is None:
        labels = np.full(readings.n_readings, default_anomalous)
        if default_anomalous:
            assumption = (
                f"{readings.source} has no {labels_column!r} column: every reading in it counts "
                "as anomalous"
            )
            others = label_like(readings, sensors, [kinds_column, sensor_column_name])
            if len(others) == 1:
                assumption += (
                    f"; its column {others[0]!r} looks like labels: pass --labels-column "
                    f"{shlex.quote(others[0])} to use it"
                )
            elif others:
                assumption += (
                    f"; its columns {', '.join(map(repr, others))} look like labels: pass "
                    "--labels-column with the one to use"
                )
    else:
        # Exactly 0 or 1: read as "> 0", a -1/1 convention (-1 anomalous) would come out
        # inverted with no error.
        if column.dtype.kind != "f" or not np.isin(column, (0.0, 1.0)).all():
            seen = (
                ", ".join(f"{v:g}" for v in np.unique(column)[:6])
                if column.dtype.kind == "f"
                else ""
            )
            raise DataError(
                readings.source,
                "labels must be 0 (normal) or 1 (anomalous) in every row"
                + (f", found {seen}" if seen else "")
                + "; a column of fault numbers or of -1/1 needs converting to 0/1 first",
                column=labels_column,
            )
        labels = column == 1
    kinds = np.full(readings.n_readings, "", dtype=object)
    kind_column = by_name.get(kinds_column.lower()) if kinds_column else None
    if kind_column is not None:
        kinds = np.where(labels, kind_column.astype(str), "").astype(object)
    kinds[labels & (kinds == "")] = "anomalous"
    faulty = None
    sensor_column = by_name.get(sensor_column_name.lower()) if sensor_column_name else None
    if sensor_column is not None:
        position = {name: i for i, name in enumerate(sensors)}
        faulty = np.array([position.get(str(name), -1) for name in sensor_column], dtype=np.int64)
        faulty[~labels] = -1
    return LabelledReadings(
        values,
        labels,
        kinds,
        readings.source,
        faulty,
        assumption,
        readings.timestamps,
        readings.ignored,
    )


def label_like(
    readings: Readings, sensors: Sequence[str], not_labels: Sequence[str | None]
) -> list[str]:
    """Columns that look like ground truth: named as ground truth (``label``, ``changepoint``;
    the kinds and faulty-sensor columns aside), or, not among the model's sensors, holding
    only 0 and 1 (``is_fault``)."""
    passed = {name.lower() for name in not_labels if name}
    named = [name for name in readings.labels if name.lower() not in passed]
    if readings.sensors == default_sensor_names(readings.n_sensors):
        return named  # no header: its columns are the model's by position
    model = set(sensors)
    binary = [
        name
        for name, values in zip(readings.sensors, readings.values.T, strict=True)
        if name not in model and np.isin(values, (0.0, 1.0)).all()
    ]
    return named + binary


def read_labelled(
    path: Path,
    sensors: Sequence[str],
    *,
    transpose: bool,
    labels_column: str | None,
    kinds_column: str | None,
    anomalous: bool,
    ignore: Sequence[str] = (),
) -> LabelledReadings:
    """Load an evaluation file with the named ground-truth columns kept out of its sensors
    and the ``ignore`` columns left out.

    A column named on the command line (None: the default) must be in the anomalous file:
    a typo would otherwise count every reading as anomalous and still print figures.
    """
    named = {"--labels-column": labels_column, "--kinds-column": kinds_column}
    wanted = [*LABEL_COLUMNS, *(name for name in named.values() if name is not None)]
    readings = load_readings(path, transpose=transpose, label_columns=wanted, drop_columns=ignore)
    found = {name.lower() for name in readings.labels}
    for option, name in named.items():
        if anomalous and name is not None and name.lower() not in found:
            columns = (
                _columns(readings, sensors)
                if path.suffix.lower() == ".csv"
                else f"a {path.suffix} file has no header row naming its columns"
            )
            raise DataError(readings.source, f"no column {name!r} ({option}); {columns}")
    return labelled(
        readings,
        sensors,
        labels_column=labels_column or DEFAULT_LABELS_COLUMN,
        kinds_column=kinds_column or DEFAULT_KINDS_COLUMN,
        default_anomalous=anomalous,
    )


def _columns(readings: Readings, sensors: Sequence[str]) -> str:
    """A CSV file's columns for an error message, the model's sensors counted rather than
    listed: the column that was meant is among the others."""
    model = set(sensors)
    extra = [name for name in readings.sensors if name not in model]
    shared = readings.n_sensors - len(extra)
    described = [
        f"the model's {shared} sensors"
        if shared == len(sensors)
        else f"{shared} of the model's {len(sensors)} sensors"
    ]
    if readings.timestamps is not None:
        described.append("a timestamp")
    others = extra + list(readings.labels)
    described += [repr(name) for name in others[:20]]
    if len(others) > 20:
        described.append(f"and {len(others) - 20} more")
    return "its columns: " + ", ".join(described)


def _source_path(source: str) -> tuple[Path, bool]:
    transposed = source.endswith(" (transposed)")
    return Path(source.removesuffix(" (transposed)")), transposed


def _synthetic_source(source: str) -> tuple[int, int, int] | None:
    """(plant_seed, seed, n_readings) when the data came from the in-memory generator."""
    match = re.fullmatch(
        r"synthetic plant \(plant_seed=(\d+), seed=(\d+), (\d+) readings\)", source
    )
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


def _recorded_values(
    record: dict[str, Any],
    override: Path | None,
    transpose: bool,
    sensors: Sequence[str],
    ignore: Sequence[str],
) -> tuple[np.ndarray, str]:
    """Load the data a manifest entry describes (or ``override``) and check its fingerprint.

    The model's sensors are taken by name: a file trained with ``--ignore-columns`` still holds
    the columns left out, and the manifest records the sensors, not those options."""
    source = str(record.get("source", ""))
    if override is not None:
        readings = load_readings(override, transpose=transpose, drop_columns=ignore)
    elif (synthetic := _synthetic_source(source)) is not None:
        plant_seed, seed, n = synthetic
        readings = generate_plant(n, seed=seed, n_sensors=len(sensors), plant_seed=plant_seed)
    else:
        path, transposed = _source_path(source)
        if not path.is_file():
            raise DataError(path, "recorded in the manifest but not found; pass it explicitly")
        readings = load_readings(path, transpose=transposed, drop_columns=ignore)
    values = align_sensors(readings, sensors)
    expected = record.get("sha256")
    actual = sha256_array(values)
    if expected is not None and actual != expected:
        raise DataError(
            readings.source,
            f"fingerprint {actual[:12]}… differs from the manifest's {str(expected)[:12]}…: "
            "not the data this model was trained on",
        )
    return values, readings.source


def baseline_data(
    manifest: Manifest,
    *,
    train_file: Path | None = None,
    train_transpose: bool = False,
    calibration_file: Path | None = None,
    calibration_transpose: bool = False,
    ignore: Sequence[str] = (),
) -> BaselineData:
    data = manifest.training.get("data", {})
    splits = manifest.training.get("splits", {})
    if "train" not in splits:
        raise DataError(manifest.name, "the manifest records no training split")
    training_record = dict(data.get("training", {}))
    training_record.setdefault("sha256", manifest.training_data_sha256)
    train_values, train_source = _recorded_values(
        training_record, train_file, train_transpose, manifest.sensors, ignore
    )
    start, stop = splits["train"]
    if "calibration" in splits:
        c_start, c_stop = splits["calibration"]
        calibration = train_values[c_start:c_stop]
        calibration_source = f"{train_source} rows {c_start}-{c_stop - 1}"
    else:
        if "calibration" not in data and calibration_file is None:
            raise DataError(manifest.name, "calibration data is not recorded; pass it explicitly")
        calibration, calibration_source = _recorded_values(
            dict(data.get("calibration", {})),
            calibration_file,
            calibration_transpose,
            manifest.sensors,
            ignore,
        )
    return BaselineData(
        train=train_values[start:stop],
        calibration=calibration,
        description=f"fitted on {train_source} rows {start}-{stop - 1}; limits on "
        f"{calibration_source}",
    )


# --------------------------------------------------------------------------- synthetic data

SYNTHETIC_SEEDS = (9_001, 9_002)
"""Normal run and faulty run: far from the seeds the default model is trained with."""


def synthetic_sets(
    manifest: Manifest, *, n_readings: int, seeds: tuple[int, int] = SYNTHETIC_SEEDS
) -> tuple[LabelledReadings, LabelledReadings]:
    """Fresh runs of the synthetic plant: one normal, one with labelled faults of every kind.
    Refuses seeds the manifest says the model was trained or calibrated on."""
    used = set()
    for record in manifest.training.get("data", {}).values():
        synthetic = _synthetic_source(str(record.get("source", "")))
        if synthetic is not None:
            used.add(synthetic[1])
    clash = used & set(seeds)
    if clash:
        raise ValueError(f"seed(s) {sorted(clash)} were used to train or calibrate this model")
    normal_run = generate_plant(n_readings, seed=seeds[0], n_sensors=manifest.n_sensors)
    if normal_run.sensors != list(manifest.sensors):
        raise ValueError(
            "the model's sensors are not the synthetic plant's: --synthetic evaluates models "
            "trained on the synthetic plant"
        )
    faulty_run = generate_plant(n_readings, seed=seeds[1], n_sensors=manifest.n_sensors)
    injected = inject_anomalies(faulty_run.values, seed=seeds[1] + 1)
    normal = LabelledReadings(
        normal_run.values,
        np.zeros(n_readings, dtype=bool),
        np.full(n_readings, "", dtype=object),
        normal_run.source,
        timestamps=normal_run.timestamps,
    )
    anomalous = LabelledReadings(
        injected.values,
        injected.labels,
        np.asarray(injected.kinds, dtype=object),
        f"{faulty_run.source} with {len(injected.events)} injected faults (seed {seeds[1] + 1})",
        np.asarray(injected.affected_sensor, dtype=np.int64),
        timestamps=faulty_run.timestamps,
    )
    return normal, anomalous
