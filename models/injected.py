"""What a trained model does with faults injected into its calibration run: each fault's
detection rate and delay at the threshold train would set, beside the clean run's own flags
on the same readings. Selection (models/selection.py) ranks candidates by these."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.inject import (
    KINDS,
    MIN_INJECTABLE,
    SLOWED_OVER,
    SPIKE_EVERY,
    Fault,
    fault_plan,
    inject,
)
from models.operating_point import declared, smooth
from models.threshold import estimate_threshold
from models.train import TrainResult
from models.windows import score_readings
from service.scoring.decision import reading_errors
from service.scoring.manifest import ScoreSmoothing

FAULTS_PER_KIND = 6


class TooShortToInject(ValueError):
    """The calibration run cannot hold the injected faults: about the data, not a candidate."""


@dataclass(frozen=True)
class InjectedRun:
    """Raw reading scores of the clean calibration run and of its faulty copies."""

    clean: np.ndarray
    faulty: list[tuple[Fault, np.ndarray]]
    window: int
    reference: list[np.ndarray] | None = None
    """Where the threshold is set, when not on ``clean``: raw scores of the parts of a
    short training run, each from a model trained on the others (models/out_of_time.py)."""


def injected_run(
    result: TrainResult, calibration_values: np.ndarray, *, seed: int = 0
) -> InjectedRun:
    if len(calibration_values) < MIN_INJECTABLE:
        raise TooShortToInject(
            f"{len(calibration_values)} calibration readings are too few to inject faults into "
            f"(at least {MIN_INJECTABLE}: they start halfway, and one averages {SLOWED_OVER} "
            "readings); use a longer calibration run, or name the model with --family and "
            "--window"
        )
    z = (np.asarray(calibration_values, dtype=np.float64) - result.scaler_mean) / (
        result.scaler_scale
    )
    window = result.window

    def scores(values: np.ndarray) -> np.ndarray:
        errors = score_readings(result.module, values, window, limits=result.glitch_limits)
        return reading_errors(errors)

    rng = np.random.default_rng(seed)
    faulty = [
        (fault, scores(inject(z, fault, rng) * result.scaler_scale + result.scaler_mean))
        for fault in fault_plan(len(z), z.shape[1], per_kind=FAULTS_PER_KIND, seed=seed)
    ]
    return InjectedRun(scores(np.asarray(calibration_values, dtype=np.float64)), faulty, window)


@dataclass(frozen=True)
class Outcomes:
    """What one option did with every injected fault."""

    detection: dict[str, float]
    """Detection rate per kind."""
    rates: tuple[float, ...]
    """Per fault, in the plan's order."""
    delays: tuple[float, ...]
    """Per fault but the spikes: readings from the onset to the first one flagged that the
    clean run does not flag (every reading after the onset when there is none)."""
    clean: dict[str, float]
    """Per kind, as ``detection``: the share of the same readings flagged in the clean run."""


def selection_threshold(run: InjectedRun, smoothing: str, quantile: float) -> float:
    """The threshold ``train`` would set at ``smoothing``: on the smoothed clean run, or on
    the run's out-of-time ``reference`` when it has one (refusals included:
    :class:`~models.threshold.DegenerateCalibration` when it would refuse one)."""
    return _threshold(run, shipped_smoothing(run, smoothing), quantile)


def calibration_parts(run: InjectedRun) -> list[np.ndarray]:
    """The scores ``train`` would set the threshold on: the clean run, or its out-of-time
    ``reference``."""
    return [run.clean] if run.reference is None else list(run.reference)


def shipped_smoothing(run: InjectedRun, smoothing: str) -> ScoreSmoothing:
    """``smoothing`` as the model would declare it: started where the scores its threshold
    is set on sit, where every run of it then starts, as a new stream does."""
    return declared(smoothing, np.concatenate(calibration_parts(run)))


def _threshold(run: InjectedRun, how: ScoreSmoothing, quantile: float) -> float:
    parts = calibration_parts(run)
    return estimate_threshold(
        np.concatenate([smooth(part, how) for part in parts]), quantile, source="selection"
    ).value


def outcomes(run: InjectedRun, smoothing: str, quantile: float) -> Outcomes:
    """Each fault's detection rate and delay, each run smoothed by ``smoothing`` and compared
    with the threshold ``train`` would set on the smoothed clean run, or on the run's
    out-of-time ``reference`` when it has one (refusals included:
    :class:`~models.threshold.DegenerateCalibration` when it would refuse one)."""
    how = shipped_smoothing(run, smoothing)
    threshold = _threshold(run, how, quantile)
    # Every fault starts at the same reading: one excursion of the clean run just after it
    # would otherwise be every fault's "detection", and the sooner, the longer a candidate
    # carries it (a window, an EWMA). The rate keeps the clean run's flags, and reports
    # them beside it: a rate no higher than theirs is no detection.
    clean_flagged = smooth(run.clean, how) > threshold
    by_kind: dict[str, list[float]] = {kind: [] for kind in KINDS}
    clean_by_kind: dict[str, list[float]] = {kind: [] for kind in KINDS}
    rates: list[float] = []
    delays: list[float] = []
    for fault, raw in run.faulty:
        scores = smooth(raw, how)
        # Score i is of the window ending at reading i + window - 1.
        if fault.kind == "spike":  # the spiked readings only, not the normal ones between
            at = np.arange(fault.onset, len(raw) + run.window - 1, SPIKE_EVERY) - run.window + 1
        else:  # from the window ending at the onset
            at = np.arange(max(0, fault.onset - run.window + 1), len(raw))
        flagged, clean_there = scores[at] > threshold, clean_flagged[at]
        if fault.kind != "spike":
            added = flagged & ~clean_there
            delays.append(float(np.argmax(added)) if added.any() else float(len(at)))
        rate = float(np.mean(flagged))
        by_kind[fault.kind].append(rate)
        clean_by_kind[fault.kind].append(float(np.mean(clean_there)))
        rates.append(rate)
    detected = {kind: float(np.mean(values)) for kind, values in by_kind.items() if values}
    clean = {kind: float(np.mean(clean_by_kind[kind])) for kind in detected}
    return Outcomes(detected, tuple(rates), tuple(delays), clean)


def detection(run: InjectedRun, smoothing: str, quantile: float) -> dict[str, float]:
    """Detection rate per kind of fault (see :func:`outcomes`)."""
    return outcomes(run, smoothing, quantile).detection


def injected_detection(
    result: TrainResult, calibration_values: np.ndarray, *, seed: int = 0
) -> dict[str, float]:
    """Detection rate per kind of fault injected into ``calibration_values``, at the
    result's own smoothing and quantile."""
    run = injected_run(result, calibration_values, seed=seed)
    return detection(run, result.config.smoothing, result.config.quantile)
