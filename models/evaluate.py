"""Is this artifact worth trusting on these readings? (``python -m models evaluate``, whose
command is ``models.evaluate_command``.)

Scores normal and labelled anomalous readings with the artifact's TorchScript module (the
code path the service runs), evaluates it at its operating threshold and across all
thresholds, and shows the PCA baseline fitted on the artifact's own training split and
limited on its own calibration readings at the same quantile beside it. Writes
``report.json``, ``report.md`` and PNG plots.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.baselines import PCABaseline
from models.data import (
    LABEL_COLUMNS,
    DataError,
    Readings,
    default_sensor_names,
    load_readings,
)
from models.evaluate_events import RunScores, evaluate_events
from models.metrics import DetectorEvaluation, evaluate_detector
from models.network import principal_plane
from models.report import (
    EvaluationReport,
    Example,
    ScoredDetector,
    Table,
    mean_error_share,
)
from models.scores import detector_scores, per_sensor_errors, scores_from_errors
from models.synthetic import generate_plant, inject_anomalies
from service.scoring.artifact import (
    Artifact,
    Manifest,
    sha256_array,
)


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
            raise DataError(
                readings.source,
                f"{readings.n_sensors} columns but the model has {len(sensors)} sensors",
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
        values, labels, kinds, readings.source, faulty, assumption, readings.timestamps
    )


def read_labelled(
    path: Path,
    sensors: Sequence[str],
    *,
    transpose: bool,
    labels_column: str | None,
    kinds_column: str | None,
    anomalous: bool,
) -> LabelledReadings:
    """Load an evaluation file with the named ground-truth columns kept out of its sensors.

    A column named on the command line (None: the default) must be in the anomalous file:
    a typo would otherwise count every reading as anomalous and still print figures.
    """
    named = {"--labels-column": labels_column, "--kinds-column": kinds_column}
    wanted = [*LABEL_COLUMNS, *(name for name in named.values() if name is not None)]
    readings = load_readings(path, transpose=transpose, label_columns=wanted)
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


def artifact_errors(artifact: Artifact, values: np.ndarray) -> np.ndarray:
    """Per-sensor squared errors from the artifact's TorchScript module (what the service
    runs), for readings ``window-1 .. n-1``."""
    return per_sensor_errors(artifact, values)


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
    record: dict[str, Any], override: Path | None, transpose: bool, n_sensors: int
) -> tuple[np.ndarray, str]:
    """Load the data a manifest entry describes (or ``override``) and check its fingerprint."""
    source = str(record.get("source", ""))
    if override is not None:
        readings = load_readings(override, transpose=transpose)
    elif (synthetic := _synthetic_source(source)) is not None:
        plant_seed, seed, n = synthetic
        readings = generate_plant(n, seed=seed, n_sensors=n_sensors, plant_seed=plant_seed)
    else:
        path, transposed = _source_path(source)
        if not path.is_file():
            raise DataError(path, "recorded in the manifest but not found; pass it explicitly")
        readings = load_readings(path, transpose=transposed)
    expected = record.get("sha256")
    actual = sha256_array(readings.values)
    if expected is not None and actual != expected:
        raise DataError(
            readings.source,
            f"fingerprint {actual[:12]}… differs from the manifest's {str(expected)[:12]}…: "
            "not the data this model was trained on",
        )
    return readings.values, readings.source


def baseline_data(
    manifest: Manifest,
    *,
    train_file: Path | None = None,
    train_transpose: bool = False,
    calibration_file: Path | None = None,
    calibration_transpose: bool = False,
) -> BaselineData:
    data = manifest.training.get("data", {})
    splits = manifest.training.get("splits", {})
    if "train" not in splits:
        raise DataError(manifest.name, "the manifest records no training split")
    training_record = dict(data.get("training", {}))
    training_record.setdefault("sha256", manifest.training_data_sha256)
    train_values, train_source = _recorded_values(
        training_record, train_file, train_transpose, manifest.n_sensors
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
            manifest.n_sensors,
        )
    return BaselineData(
        train=train_values[start:stop],
        calibration=calibration,
        description=f"fitted on {train_source} rows {start}-{stop - 1}; limits on "
        f"{calibration_source}",
    )


OPERATING_RANGE_STRETCH = 1.5
"""How much wider than the evaluation's normal readings the operating-range check moves them."""
OPERATING_RANGE_VARIANCE = 0.9
"""Share of the normal readings' variance whose directions count as "how normal operation
varies" (the PCA baseline's rule)."""


@dataclass(frozen=True)
class OperatingRangeCheck:
    """Would the model alarm if normal operation merely spanned a wider range?

    Normal readings are moved ``stretch`` times further from their mean along the principal
    directions they already vary in (a wider operating range, nothing broken) and scored
    again at the operating threshold. A model that only reconstructs the range it was trained
    on flags many of them; the ``--plane-variance`` option is built not to.
    """

    stretch: float
    n_directions: int
    flagged_before: float
    flagged_after: float

    @property
    def ok(self) -> bool:
        return self.flagged_after < 2 * self.flagged_before + 0.01

    @property
    def message(self) -> str:
        moved = (
            f"normal readings moved {self.stretch:g}x further along their {self.n_directions} "
            f"principal directions: {self.flagged_after:.1%} flagged (unmoved: "
            f"{self.flagged_before:.1%})"
        )
        if self.ok:
            return f"ok: {moved}."
        return (
            f"WARNING: {moved}. The model alarms when operation merely spans a wider range than "
            "in training; train on data covering the plant's whole range, or with "
            "--plane-variance 0.9."
        )


def operating_range_check(
    artifact: Artifact,
    normal_values: np.ndarray,
    *,
    stretch: float = OPERATING_RANGE_STRETCH,
    variance_to_keep: float = OPERATING_RANGE_VARIANCE,
) -> OperatingRangeCheck:
    manifest = artifact.manifest
    mean = np.asarray(manifest.scaler.mean)
    scale = np.asarray(manifest.scaler.scale)
    z = (np.asarray(normal_values, dtype=np.float64) - mean) / scale
    centre = z.mean(axis=0)
    deviation = z - centre
    plane = principal_plane(deviation, variance_to_keep).astype(np.float64)
    moved = centre + deviation + (stretch - 1.0) * (deviation @ plane) @ plane.T
    threshold = manifest.threshold.value
    before = detector_scores(artifact, normal_values) > threshold
    after = detector_scores(artifact, moved * scale + mean) > threshold
    return OperatingRangeCheck(
        stretch=stretch,
        n_directions=plane.shape[1],
        flagged_before=float(before.mean()),
        flagged_after=float(after.mean()),
    )


@dataclass
class ArtifactEvaluation:
    report: EvaluationReport
    evaluations: list[DetectorEvaluation]
    operating_range: OperatingRangeCheck


def evaluate_artifact(
    artifact: Artifact,
    normal: LabelledReadings,
    anomalous: LabelledReadings,
    *,
    baseline: BaselineData | None,
    baseline_note: str = "",
) -> ArtifactEvaluation:
    """Score both sets with the artifact (and the PCA baseline on the same readings)."""
    manifest = artifact.manifest
    skip = manifest.window - 1
    errors = [artifact_errors(artifact, part.values) for part in (normal, anomalous)]
    per_sensor = np.concatenate(errors)
    labels = np.r_[normal.labels[skip:], anomalous.labels[skip:]]
    kinds = np.r_[normal.kinds[skip:], anomalous.kinds[skip:]]
    if labels.all() or not labels.any():
        raise ValueError("the evaluation needs both normal and anomalous readings")
    scores = {"autoencoder": np.concatenate([scores_from_errors(artifact, e) for e in errors])}
    sources = {
        "autoencoder": f"manifest threshold: {manifest.threshold.quantile} quantile of "
        f"{manifest.threshold.n_calibration} readings of {manifest.threshold.source}"
    }
    thresholds = {"autoencoder": manifest.threshold.value}
    notes = []
    context: dict[str, Any] = {
        "model": f"{manifest.name} {manifest.version} ({artifact.path})",
        "sensors": manifest.n_sensors,
        "window": manifest.window,
        "normal data": normal.source,
        "anomalous data": anomalous.source,
    }
    notes += [f"WARNING: {part.assumption}." for part in (normal, anomalous) if part.assumption]
    notes += reused_data_warnings(manifest, {"normal": normal, "anomalous": anomalous})
    if baseline is not None:
        pca = PCABaseline.fit(baseline.train)
        calibration = baseline.calibration[skip:]
        quantile = manifest.threshold.quantile
        for name, statistic in (("pca_t2", pca.t2), ("pca_spe", pca.spe)):
            scores[name] = np.r_[
                statistic(normal.values[skip:]), statistic(anomalous.values[skip:])
            ]
            thresholds[name] = float(np.quantile(statistic(calibration), quantile, method="higher"))
            sources[name] = f"{quantile} quantile on the same calibration readings"
        context["PCA baseline"] = (
            f"{pca.n_components} components ({pca.explained_variance:.1%} of training variance), "
            + baseline.description
        )
    else:
        notes.append(f"No PCA baseline: {baseline_note}")
    scored = []
    evaluations = []
    for name, values in scores.items():
        evaluation = evaluate_detector(
            name,
            values,
            labels,
            threshold=thresholds[name],
            threshold_source=sources[name],
            kinds=kinds,
        )
        evaluations.append(evaluation)
        scored.append(ScoredDetector(evaluation, values, labels))
    operating_range = operating_range_check(artifact, normal.values)
    context["operating range"] = operating_range.message
    if not operating_range.ok:
        notes.append(operating_range.message)
    detected = labels & (scores["autoencoder"] > thresholds["autoencoder"])
    tables = []
    faulty = None
    if anomalous.faulty_sensor is not None:
        faulty = np.r_[np.full(normal.labels.size - skip, -1), anomalous.faulty_sensor[skip:]]
        tables.append(attribution_table(per_sensor, faulty, detected, kinds))
    threshold = thresholds["autoencoder"]
    split = normal.labels.size - skip
    runs = [
        RunScores(
            name,
            part_scores / threshold,
            part.labels[skip:],
            part.kinds[skip:],
            None if part.timestamps is None else part.timestamps[skip:],
        )
        for name, part, part_scores in (
            ("normal run", normal, scores["autoencoder"][:split]),
            ("labelled run", anomalous, scores["autoencoder"][split:]),
        )
    ]
    events = evaluate_events(runs)
    context["alerts (event level)"] = events.summary
    tables += events.tables
    report = EvaluationReport(
        title=f"Evaluation of {manifest.name} {manifest.version}",
        context=context,
        detectors=scored,
        sensors=list(manifest.sensors),
        contribution_anomalous=mean_error_share(per_sensor[labels]),
        contribution_normal=mean_error_share(per_sensor[~labels]),
        tables=tables,
        examples=example_readings(per_sensor, scores["autoencoder"], detected, kinds, faulty),
        notes=notes,
        timelines=events.timelines,
    )
    return ArtifactEvaluation(report, evaluations, operating_range)


def reused_data_warnings(manifest: Manifest, parts: dict[str, LabelledReadings]) -> list[str]:
    """Evaluating on the data a model was trained or calibrated on flatters it: say so."""
    known = {manifest.training_data_sha256: "training"}
    for role, record in manifest.training.get("data", {}).items():
        if isinstance(record, dict) and "sha256" in record:
            known[str(record["sha256"])] = role
    warnings = []
    for name, part in parts.items():
        role = known.get(sha256_array(part.values))
        if role is not None:
            warnings.append(
                f"WARNING: the {name} data is this model's {role} data, so its figures are "
                "in-sample and flatter the model; evaluate on another run."
            )
    return warnings


def attribution_table(
    per_sensor: np.ndarray, faulty: np.ndarray, detected: np.ndarray, kinds: np.ndarray
) -> Table:
    """Does the largest per-sensor error point at the sensor that was actually at fault?
    Measured on detected anomalies whose faulty sensor is known."""
    known = detected & (faulty >= 0)
    ranking = np.argsort(-per_sensor, axis=1)[:, :3]
    top1 = ranking[:, 0] == faulty
    top3 = (ranking == faulty[:, None]).any(axis=1)
    rows: list[list[Any]] = []
    groups = [("all", known)] + [(str(k), known & (kinds == k)) for k in sorted(set(kinds[known]))]
    for name, rows_mask in groups:
        n = int(rows_mask.sum())
        if n == 0:
            continue
        rows.append([name, n, f"{np.mean(top1[rows_mask]):.1%}", f"{np.mean(top3[rows_mask]):.1%}"])
    return Table(
        title="Which sensor? Attribution on detected anomalies",
        columns=["anomaly kind", "detected readings", "faulty sensor ranked 1st", "in top 3"],
        rows=rows,
        note="Per-sensor errors of the autoencoder ranked per reading; chance is "
        f"{1 / per_sensor.shape[1]:.1%} for 1st place.",
    )


def example_readings(
    per_sensor: np.ndarray,
    scores: np.ndarray,
    detected: np.ndarray,
    kinds: np.ndarray,
    faulty: np.ndarray | None,
    *,
    limit: int = 6,
) -> list[Example]:
    """The highest-scoring detected reading of each anomaly kind (then the next highest)."""
    order = [int(i) for i in np.argsort(-scores) if detected[i]]
    chosen: list[int] = []
    for kind in sorted(set(kinds[detected])):
        first = next((i for i in order if kinds[i] == kind), None)
        if first is not None:
            chosen.append(first)
    chosen += [i for i in order if i not in chosen][: max(0, limit - len(chosen))]
    return [
        Example(
            title=f"{kinds[i]} (error {scores[i]:.3g})",
            errors=per_sensor[i],
            highlight=None if faulty is None or faulty[i] < 0 else int(faulty[i]),
        )
        for i in chosen[:limit]
    ]


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
