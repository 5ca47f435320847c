"""How selection weighs one candidate's smoothings: each at the threshold ``train`` would ship
with it (models/injected.py), those that carry to other data (the split-half check) and at
which a lone glitch pages no one (the lone-glitch check), then the rule of
:func:`models.selection_rule.apply_rule`. :mod:`models.selection` runs it for every
candidate."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from models.injected import InjectedRun, calibration_parts, outcomes, selection_threshold
from models.lone_spike import lone_spike_check
from models.operating_point import declared, smooth
from models.scores import per_sensor_errors
from models.selection_rule import CandidateScore, apply_rule
from models.threshold import DegenerateCalibration
from models.train import TrainResult
from models.train_config import TrainConfig

TRANSFER_SLACK = 2.0
"""A smoothing whose split-half false alarms exceed this many times the quantile's rate
does not carry to other data well enough to be chosen."""


def split_false_alarms(
    clean: np.ndarray, smoothing: str, quantile: float, *, start_from: np.ndarray | None = None
) -> float:
    """The limit from one half of the clean run, false alarms counted on the other, both
    ways round and averaged. Noisy on a short run, but a smoothing that holds an excursion
    for long shows here as a rate well above ``1 - quantile``. Each half starts as a new
    stream of the model would: where the scores its threshold is set on sit (``start_from``,
    the clean run unless given)."""
    how = declared(smoothing, clean if start_from is None else start_from)
    half = len(clean) // 2
    first, second = smooth(clean[:half], how), smooth(clean[half:], how)
    rates = [
        float(np.mean(b > np.quantile(a, quantile, method="higher")))
        for a, b in ((first, second), (second, first))
    ]
    return float(np.mean(rates))


def split_allowance(quantile: float) -> float:
    """The split-half false alarms a smoothing may show: TRANSFER_SLACK x ``1 - quantile``."""
    return TRANSFER_SLACK * (1 - quantile)


def split_warning(chosen: CandidateScore, *, calibration_given: bool) -> str | None:
    """A warning when the chosen option's split-half false alarms exceed the allowance
    (which narrows a candidate's smoothings, keeping the nearest when none meets it, but does
    not rank candidates): the rate its threshold states is unlikely to hold on other data of
    the process."""
    rate, allowed = chosen.split_false_alarms, split_allowance(chosen.config.quantile)
    if not math.isfinite(rate) or rate <= allowed:
        return None
    remedy = (
        "Check that --calibration-data is normal operation of the same process, or train "
        "on a longer run that covers how it varies"
        if calibration_given
        else "Train on a longer run that covers how the process varies, or pass "
        "--calibration-data with normal readings of another run or period"
    )
    return (
        f"the chosen model ({chosen.label}) flags {rate:.1%} of one half of its calibration "
        f"run at a limit set on the other half (both ways round), above the {allowed:.1%} its "
        f"{chosen.config.quantile:g} quantile allows: the run changes between its halves "
        "(drift, another operating state), so expect more false alarms on other data than "
        f"the threshold states. {remedy}"
    )


def weigh_smoothings(
    run: InjectedRun,
    config: TrainConfig,
    smoothings: tuple[str, ...],
    seconds: float,
    cost: int = 0,
    pages: Callable[[str], bool | None] | None = None,
) -> CandidateScore:
    """The candidate at the smoothing :func:`apply_rule` picks among those whose split-half
    false alarms stay within TRANSFER_SLACK x ``1 - quantile`` (or, if none does, the one
    that carries best) and, when ``pages`` says so of any of those, at which a lone spike
    does not raise an alert: the service's debounced alert promises that one bad reading
    pages no one, and a smoothing that carries a glitch's score into an alert breaks it.
    Where every smoothing pages (a model over a window without the glitch guard sees the
    spike in every window), the choice is as if nothing had been checked."""
    weighed = []
    for spec in smoothings:
        try:
            found = outcomes(run, spec, config.quantile)
        except DegenerateCalibration:
            continue  # train would refuse the threshold this smoothing leaves
        split = split_false_alarms(
            run.clean, spec, config.quantile, start_from=np.concatenate(calibration_parts(run))
        )
        weighed.append(
            CandidateScore(
                replace(config, smoothing=spec),
                found.detection,
                seconds,
                split,
                found.rates,
                found.delays,
                cost,
                clean=found.clean,
            )
        )
    if not weighed:  # every smoothing flattens the tail: train will say why
        return CandidateScore(config, {}, seconds, 1.0, multiply_adds=cost)
    allowed = [w for w in weighed if w.split_false_alarms <= split_allowance(config.quantile)]
    if not allowed:
        allowed = [min(weighed, key=lambda w: w.split_false_alarms)]
    if pages is not None:
        allowed = [replace(w, glitch_pages=pages(w.config.smoothing)) for w in allowed]
        quiet = [w for w in allowed if w.glitch_pages is not True]
        allowed = quiet or allowed
    winner = next(o for o in apply_rule(allowed) if o.out_at is None)
    return replace(winner, out_at=None)


def glitch_pages(
    result: TrainResult, calibration: np.ndarray, run: InjectedRun
) -> Callable[[str], bool | None]:
    """Whether, at a smoothing and the threshold the ranking sets for it, a lone spike
    injected into the calibration run raises an alert
    (:func:`models.lone_spike.lone_spike_check`); None where the check cannot say."""

    clean: list[np.ndarray] = []  # the run's per-sensor errors, scored once if asked

    def pages(spec: str) -> bool | None:
        if not clean:
            clean.append(per_sensor_errors(result, np.asarray(calibration, dtype=np.float64)))
        at = replace(result, config=replace(result.config, smoothing=spec))
        threshold = selection_threshold(run, spec, result.config.quantile)
        check = lone_spike_check(at, calibration, threshold=threshold, clean_errors=clean[0])
        return None if check.ok is None else not check.ok

    return pages
