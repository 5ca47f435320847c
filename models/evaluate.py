"""Is this artifact worth trusting on these readings? (``python -m models evaluate``, whose
command is ``models.evaluate_command``.)

Scores normal and labelled anomalous readings with the artifact's TorchScript module (the
code path the service runs), evaluates it at its operating threshold and across all
thresholds, and shows the PCA baseline fitted on the artifact's own training split and
limited on its own calibration readings at the same quantile beside it. Writes
``report.json``, ``report.md`` and PNG plots.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from models.baselines import PCABaseline
from models.data_warnings import time_unit_warning
from models.evaluate_data import BaselineData, LabelledReadings
from models.evaluate_events import RunScores, evaluate_events
from models.evaluate_model import ModelForm
from models.evaluate_normal import NormalRateCheck, normal_rate_check
from models.lone_spike import LoneSpikeCheck, lone_spike_check
from models.metrics import DetectorEvaluation, evaluate_detector
from models.network import principal_plane
from models.report import (
    EvaluationReport,
    Example,
    ScoredDetector,
    Table,
    mean_error_share,
)
from models.scores import alert_rule_for, detector_scores, per_sensor_errors, scores_from_errors
from service.scoring.artifact import Artifact, sha256_array
from service.scoring.manifest import Manifest


def artifact_errors(artifact: Artifact, values: np.ndarray) -> np.ndarray:
    """Per-sensor squared errors from the artifact's TorchScript module (what the service
    runs), for readings ``window-1 .. n-1``."""
    return per_sensor_errors(artifact, values)


EXAMPLES_APART = 10
"""Readings between two examples beyond the first of each kind (at least the model's window)."""

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
    on flags many of them (the autoencoder's ``--plane-variance`` option is built not to).
    Normal readings mostly flagged already (``normal``) leave nothing to compare: the check
    is then not ok either, and says why.
    """

    stretch: float
    n_directions: int
    flagged_before: float
    flagged_after: float
    normal: NormalRateCheck
    advice: str
    """What to do about a model that alarms on a wider range (options of its family only)."""

    @property
    def ok(self) -> bool:
        return self.normal.ok and self.flagged_after < 2 * self.flagged_before + 0.01

    @property
    def message(self) -> str:
        moved = (
            f"normal readings moved {self.stretch:g}x further along their {self.n_directions} "
            f"principal directions: {self.flagged_after:.1%} flagged (unmoved: "
            f"{self.flagged_before:.1%})"
        )
        if not self.normal.ok:
            return (
                f"WARNING: {moved}; but most unmoved normal readings are already flagged (the "
                f"threshold states {self.normal.stated}), so a wider range cannot show in "
                "them. Evaluate with normal readings of the operation the model was trained "
                "for."
            )
        if self.ok:
            return f"ok: {moved}."
        return (
            f"WARNING: {moved}. The model alarms when operation merely spans a wider range than "
            f"in training; {self.advice}"
        )


def operating_range_check(
    artifact: Artifact,
    normal_values: np.ndarray,
    *,
    normal: NormalRateCheck | None = None,
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
        normal=normal or normal_rate_check(manifest, before),
        advice=ModelForm.of(artifact).range_advice(),
    )


class TooFewReadings(ValueError):
    """The data hold too few readings (or too few of a class) to evaluate."""


@dataclass
class ArtifactEvaluation:
    report: EvaluationReport
    evaluations: list[DetectorEvaluation]
    operating_range: OperatingRangeCheck
    lone_spike: LoneSpikeCheck
    model: ModelForm
    normal_rate: NormalRateCheck
    reused_data: list[str]
    """Warnings that the evaluation reads the model's own training or calibration data."""
    time_units: list[str] = field(default_factory=list)
    """Warnings that a file's numeric timestamps are too large to be seconds."""


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
    form = ModelForm.of(artifact)
    model = form.name
    skip = manifest.window - 1
    for name, part in (("normal", normal), ("anomalous", anomalous)):
        if len(part.values) < manifest.window:
            raise TooFewReadings(
                f"the {name} readings ({part.source}) are {len(part.values)}, fewer than one "
                f"window of the {manifest.window} readings the model scores at a time"
            )
    errors = [artifact_errors(artifact, part.values) for part in (normal, anomalous)]
    per_sensor = np.concatenate(errors)
    labels = np.r_[normal.labels[skip:], anomalous.labels[skip:]]
    kinds = np.r_[normal.kinds[skip:], anomalous.kinds[skip:]]
    n_anomalous = int(labels.sum())
    if n_anomalous < 2 or labels.size - n_anomalous < 2:
        # The pooled t-test needs two of each; fewer leaves nothing to evaluate.
        after = f" after each run's first {skip} (the model's window)" if skip else ""
        raise TooFewReadings(
            f"the evaluation needs at least two scored normal and two scored anomalous "
            f"readings; the data give {labels.size - n_anomalous} and {n_anomalous}{after}"
        )
    scores = {model: np.concatenate([scores_from_errors(artifact, e) for e in errors])}
    sources = {
        model: f"manifest threshold: {manifest.threshold.quantile} quantile of "
        f"{manifest.threshold.n_calibration} readings of {manifest.threshold.source}"
    }
    thresholds = {model: manifest.threshold.value}
    notes = []
    context: dict[str, Any] = {
        "model": f"{manifest.name} {manifest.version} ({artifact.path}): {model}",
        "smoothing": f"{form.smoothing}, as the model declares"
        if form.smoothing is not None
        else "none declared: the service smooths as its settings say",
        "sensors": manifest.n_sensors,
        "window": manifest.window,
        "normal data": normal.source,
        "anomalous data": anomalous.source,
    }
    notes += [f"WARNING: {part.assumption}." for part in (normal, anomalous) if part.assumption]
    reused = reused_data_warnings(manifest, {"normal": normal, "anomalous": anomalous})
    notes += reused
    # per-day figures below rest on the unit, so the report says it beside them
    time_units = [
        f"WARNING: {warning}."
        for part in (normal, anomalous)
        if (warning := time_unit_warning(part.source, part.timestamps)) is not None
    ]
    notes += time_units
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
    operation = np.zeros(labels.size, dtype=bool)  # the normal file's unlabelled readings
    operation[: normal.labels.size - skip] = True
    operation &= ~labels
    normal_rate = normal_rate_check(manifest, scores[model][operation] > thresholds[model])
    context["normal readings"] = normal_rate.message
    if not normal_rate.holds:
        notes.append(normal_rate.message)
    advice = form.advice()
    if not normal_rate.ok:
        text = normal_rate.capacity_advice
        advice = replace(advice, capacity=text, weak=text, invisible="")
    for name, values in scores.items():
        evaluation = evaluate_detector(
            name,
            values,
            labels,
            threshold=thresholds[name],
            threshold_source=sources[name],
            kinds=kinds,
            operation=operation,
            advice=advice if name == model else None,
        )
        evaluations.append(evaluation)
        scored.append(ScoredDetector(evaluation, values, labels))
    operating_range = operating_range_check(artifact, normal.values, normal=normal_rate)
    context["operating range"] = operating_range.message
    if not operating_range.ok:
        notes.append(operating_range.message)
    lone_spike = lone_spike_check(
        artifact,
        normal.values,
        threshold=manifest.threshold.value,
    )
    recorded = manifest.metrics.get("lone_spike")
    if isinstance(recorded, dict):  # said when the normal file is too short to check
        lone_spike = replace(lone_spike, recorded=recorded)
    context["lone spike"] = lone_spike.as_dict()
    if not lone_spike.ok:
        notes.append(lone_spike.message)
    detected = labels & (scores[model] > thresholds[model])
    tables = []
    faulty = None
    if anomalous.faulty_sensor is not None:
        faulty = np.r_[np.full(normal.labels.size - skip, -1), anomalous.faulty_sensor[skip:]]
        tables.append(attribution_table(per_sensor, faulty, detected, kinds, model))
    threshold = thresholds[model]
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
            ("normal run", normal, scores[model][:split]),
            ("labelled run", anomalous, scores[model][split:]),
        )
    ]
    events = evaluate_events(runs, alert_rule_for(artifact), declared=form.smoothing)
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
        examples=example_readings(
            per_sensor,
            scores[model],
            detected,
            kinds,
            faulty,
            threshold,
            smoothed=form.smoothed,
            apart=max(EXAMPLES_APART, manifest.window),
            split=split,
        ),
        notes=notes,
        timelines=events.timelines,
    )
    return ArtifactEvaluation(
        report, evaluations, operating_range, lone_spike, form, normal_rate, reused, time_units
    )


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


def _position(index: int, split: int) -> str:
    if index < split:
        return f"normal run, reading {index}"
    return f"labelled run, reading {index - split}"


def attribution_table(
    per_sensor: np.ndarray,
    faulty: np.ndarray,
    detected: np.ndarray,
    kinds: np.ndarray,
    model: str = "model",
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
        note=f"Per-sensor errors of the {model} ranked per reading; chance is "
        f"{1 / per_sensor.shape[1]:.1%} for 1st place.",
    )


def example_readings(
    per_sensor: np.ndarray,
    scores: np.ndarray,
    detected: np.ndarray,
    kinds: np.ndarray,
    faulty: np.ndarray | None,
    threshold: float,
    *,
    limit: int = 6,
    smoothed: bool = False,
    apart: int = 1,
    split: int = 0,
) -> list[Example]:
    """The highest-scoring detected reading of each anomaly kind, then the next highest at
    least ``apart`` readings from every one chosen (neighbouring readings share most of a
    window and a smoothing, so they would show one moment twice). Titles give where the reading
    is, as the time plot counts (the scored readings of each run; the normal run's ``split``
    come first), and its score against the threshold, ``smoothed`` as the model declares (the
    bars are the reading's own errors)."""
    score_name = "smoothed score" if smoothed else "score"
    order = [int(i) for i in np.argsort(-scores, kind="stable") if detected[i]]
    chosen: list[int] = []
    for kind in sorted(set(kinds[detected])):
        first = next((i for i in order if kinds[i] == kind), None)
        if first is not None:
            chosen.append(first)
    for i in order:
        if len(chosen) >= limit:
            break
        if all(abs(i - j) >= apart for j in chosen):
            chosen.append(i)
    return [
        Example(
            title=(
                f"{kinds[i]}, {_position(i, split)} ({score_name} {scores[i] / threshold:.3g}x "
                "the threshold)"
            ),
            errors=per_sensor[i],
            highlight=None if faulty is None or faulty[i] < 0 else int(faulty[i]),
        )
        for i in chosen[:limit]
    ]
