"""A threshold that holds out of time when the training run is too short to leave a
calibration tail for its quantile.

A deployed model scores readings it never saw, ever further in time from the ones it was
trained on. Without a separate calibration run, ``train`` sets the threshold on the tail of
the training file; on a short run (SKAB's 400 rows leave 60) that tail lies right beside the
training readings and holds too few readings for a 0.99 quantile. On normal data (SKAB's
``anomaly-free.csv`` cut into runs of its files' length, train on the first 400 rows) such a
threshold flags about half of the rest of the same normal run: slow drift, not the tail's
noise, sets the errors there.

The rule, decided by design: when no separate calibration run is given and the tail holds
fewer than ``MIN_TAIL_SAMPLES / (1 - quantile)`` readings (the count below which ``train``
already warns), the training run is cut in two halves in time; a model with the same
settings is trained on each half and scores the other. Every reading of the run then has an
out-of-time error, from a model that never saw it and was trained on readings up to a whole
half away, and the threshold is the quantile of all of them (each half's scores smoothed as
the model declares) instead of the tail's: seven times the sample, at the distance the
deployed model meets. The deployed model itself is unchanged (trained on the training split
as before); its threshold and its reference sample for drift tests come from the two
out-of-time halves.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from models.operating_point import declared, smooth
from models.threshold import MIN_TAIL_SAMPLES, CalibrationUnscorable, estimate_threshold
from models.train import TrainResult, train
from service.calibration.evidence import normal_memory
from service.scoring.decision import reading_errors

FOLDS = 2
"""Halves: each fold model is trained on a contiguous half and scores the other, so the
errors are out of time by up to half the run (more folds put the scored readings closer to
the training ones, which is the tail's weakness)."""


@dataclass(frozen=True)
class OutOfTimeDecision:
    """Whether the rule applies to a run, and why."""

    applies: bool
    reason: str


def decide(result: TrainResult) -> OutOfTimeDecision:
    """The rule applies when the threshold came from the training file's own tail and that
    tail is too short for the quantile.

    >>> from types import SimpleNamespace
    >>> decide(SimpleNamespace(splits={"calibration": (340, 400)},
    ...     config=SimpleNamespace(quantile=0.99))).applies
    True
    """
    if "calibration" not in result.splits:
        return OutOfTimeDecision(False, "a separate calibration run sets the threshold")
    start, stop = result.splits["calibration"]
    needed = math.ceil(MIN_TAIL_SAMPLES / (1 - result.config.quantile))
    if stop - start >= needed:
        return OutOfTimeDecision(
            False, f"the calibration tail holds {stop - start} readings, enough for the quantile"
        )
    return OutOfTimeDecision(
        True,
        f"the calibration tail holds {stop - start} readings, fewer than the {needed} the "
        f"{result.config.quantile:g} quantile needs",
    )


def out_of_time_errors(
    result: TrainResult, values: np.ndarray, *, folds: int = FOLDS
) -> list[np.ndarray]:
    """Per-sensor errors of each contiguous part of ``values`` (time order) from a model with
    ``result``'s settings trained on the other parts; one array per part, in time order.

    Raises ValueError when a part is too short for the model's splits or window."""
    values = np.asarray(values, dtype=np.float64)
    edges = np.linspace(0, len(values), folds + 1).round().astype(int)
    config = replace(result.config, smoothing="none")
    errors = []
    for start, stop in zip(edges[:-1], edges[1:], strict=True):
        rest = np.concatenate([values[:start], values[stop:]])
        fold = train(
            rest,
            result.sensors,
            config,
            calibration_values=values[start:stop],
            calibration_source="out-of-time fold",
        )
        errors.append(fold.calibration_errors.astype(np.float64))
    return errors


def out_of_time_scores(result: TrainResult, values: np.ndarray) -> list[np.ndarray] | None:
    """The raw reading scores of each half of the training run ``values`` from a model
    trained on the other (what the threshold is set on when :func:`decide` says the rule
    applies); None when it does not, or when the halves are too short for the model."""
    if not decide(result).applies:
        return None
    try:
        return [kept_scores(part) for part in out_of_time_errors(result, values)]
    except ValueError:  # CalibrationUnscorable included: the tail's threshold stays
        return None


def kept_scores(errors: np.ndarray) -> np.ndarray:
    """Reading scores of out-of-time ``errors`` as the model that keeps them as its
    calibration errors (float32) computes them, so selection, the threshold and the model's
    declared smoothing start from the same level to the last bit."""
    return reading_errors(np.asarray(errors, dtype=np.float32))


def calibrate_out_of_time(
    result: TrainResult, values: np.ndarray, *, folds: int = FOLDS
) -> TrainResult:
    """``result`` with its threshold from out-of-time errors of the whole training run
    ``values`` when :func:`decide` says the rule applies; otherwise unchanged. When the run
    is too short for the fold models, or their errors cannot back a threshold, the tail's
    threshold stays and the metrics say why."""
    decision = decide(result)
    note: dict[str, object] = {"applied": False, "reason": decision.reason}
    if decision.applies:
        try:
            parts = out_of_time_errors(result, values, folds=folds)
            errors = np.concatenate(parts).astype(np.float32)
            raw = [kept_scores(part) for part in parts]
            # These errors become the model's calibration errors, so its declared smoothing
            # starts where they sit; each half starts there, as a new stream does.
            how = declared(result.config.smoothing, np.concatenate(raw))
            scores = np.concatenate([smooth(part, how) for part in raw])
            threshold = estimate_threshold(
                scores,
                result.config.quantile,
                source=f"out-of-time errors of the training run ({folds} halves, each scored "
                "by a model trained on the other)",
            )
        except (CalibrationUnscorable, ValueError) as exc:
            note["reason"] = f"{decision.reason}, but the out-of-time models failed: {exc}"
        else:
            note = {
                "applied": True,
                "reason": decision.reason,
                "folds": folds,
                "n_calibration": int(scores.size),
                "tail_threshold": result.threshold.value,
                "threshold": threshold.value,
            }
            metrics = {
                **result.metrics,
                "threshold_observed_false_alarm_rate": threshold.observed_false_alarm_rate,
                "threshold_false_alarm_rate_ci": list(threshold.false_alarm_rate_ci),
                "threshold_excursions": threshold.n_excursions,
                "threshold_warning": threshold.warning,
                "calibration_source": threshold.source,
                # Of the errors that become the calibration run, at the threshold set on them.
                "normal_memory": asdict(normal_memory(errors, scores, threshold.value)),
                "out_of_time": note,
            }
            # The smoothing is applied per half above; with_smoothing re-smooths the joined
            # errors, which differs only at the one join.
            return replace(
                result,
                threshold=threshold,
                calibration_errors=errors,
                metrics=metrics,
            )
    return replace(result, metrics={**result.metrics, "out_of_time": note})
