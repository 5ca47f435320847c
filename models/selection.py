"""Choosing a model on normal data only: candidates ranked by the faults they catch when
faults are injected into the calibration run.

The rule (named in docs/training.md): every candidate is trained on the training split and
its threshold set on the clean calibration run at the configured quantile; then each kind
of fault in :mod:`models.inject` is injected into copies of the calibration run. A
candidate's detection rate is the share of readings after the onset that score above its
threshold, averaged over the faults; its delay the readings from the onset to the first
one flagged that the clean run does not flag (a false alarm is no detection); its cost the
multiply-adds per scored reading. The one-standard-error rule (Breiman et al. 1984) is
applied to detection, then to delay (paired over the same injected faults), and the
cheapest survivor wins (:func:`apply_rule`). Labelled fault data is never read.

Every candidate flags the same share of the clean calibration run by construction, so the
ranking compares detection at equal false alarms. Validation loss is not used: it measures
how well a model reproduces normal data, not how well it tells faults from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from models.fitting import TrainingDiverged
from models.inject import KINDS, SPIKE_EVERY, Fault, fault_plan, inject
from models.inputs import BeyondFloat32
from models.operating_point import CANDIDATES, parse_smoothing, smooth
from models.out_of_time import out_of_time_scores
from models.selection_rule import CandidateScore, apply_rule
from models.threshold import CalibrationUnscorable, DegenerateCalibration, estimate_threshold
from models.train import (
    FAMILIES,
    LINEAR_FAMILIES,
    TrainConfig,
    TrainResult,
    score_readings,
    train,
)
from models.whitened import RESIDUALS

MAX_WINDOW = 20
FAULTS_PER_KIND = 6
TRANSFER_SLACK = 2.0
"""A smoothing whose split-half false alarms exceed this many times the quantile's rate
does not carry to other data well enough to be chosen."""


@dataclass(frozen=True)
class Selection:
    ranking: list[CandidateScore]
    """Best first."""
    autocorrelation_window: int
    result: TrainResult
    """The winner, trained and calibrated."""

    def summary(self) -> dict[str, object]:
        """For the manifest: what was tried and why the winner won."""
        return {
            "rule": "one-standard-error rule on the detection of faults injected into the "
            "calibration run (at the threshold's false-alarm rate on the clean run), then on "
            "their detection delay, then the fewest multiply-adds per reading; among "
            f"smoothings whose split-half false alarms stay within {TRANSFER_SLACK:g}x the "
            "quantile's",
            "autocorrelation_window": self.autocorrelation_window,
            "fault_kinds": list(KINDS),
            "faults_per_kind": FAULTS_PER_KIND,
            "ranking": [
                {
                    "family": score.config.family,
                    "window": score.config.window,
                    "residual": score.config.residual,
                    "smoothing": score.config.smoothing,
                    "split_false_alarms": round(score.split_false_alarms, 4),
                    "mean_detection": round(score.mean_detection, 4),
                    "detection": {k: round(v, 4) for k, v in score.detection.items()},
                    "mean_delay": round(score.mean_delay, 2),
                    "multiply_adds": score.multiply_adds,
                    "out_at": score.out_at,
                    "seconds": round(score.seconds, 2),
                }
                for score in self.ranking
            ],
        }


def autocorrelation_window(values: np.ndarray, *, max_window: int = MAX_WINDOW) -> int:
    """How many readings the process remembers, by the rule used to choose CVA's past
    horizon (Odiowei & Cao 2010): the first lag at which the autocorrelation of the readings'
    summed squares (standardised) falls inside its 95% band for white noise, ±1.96/√n;
    between 2 and ``max_window``.

    >>> rng = np.random.default_rng(0)
    >>> autocorrelation_window(rng.standard_normal((500, 3)))
    2
    """
    x = np.asarray(values, dtype=np.float64)
    spread = x.std(axis=0)
    varying = spread > 0
    if not varying.any() or len(x) < 8:
        return 2
    z = (x[:, varying] - x[:, varying].mean(axis=0)) / spread[varying]
    energy = (z**2).sum(axis=1)
    energy = energy - energy.mean()
    total = float((energy**2).sum())
    if total <= 0:
        return 2
    band = 1.96 / np.sqrt(len(energy))
    for lag in range(1, min(max_window, len(energy) // 2) + 1):
        if abs(float((energy[lag:] * energy[:-lag]).sum()) / total) < band:
            return max(2, lag)
    return max_window


def candidates(
    base: TrainConfig, memory: int, families: Sequence[str] | None = None
) -> list[TrainConfig]:
    """The bounded set tried by default: the linear references over 2 readings, half the
    process's memory and all of it (within 2..MAX_WINDOW), today's single-reading
    autoencoder, autoencoders over the two shorter windows and a temporal convolutional one
    over all of it. Cheapest first, so a tie keeps the cheaper model.

    With ``families``, the set of those families alone (:func:`family_candidates`)."""
    if families is not None:
        return family_candidates(base, memory, families)
    windows = horizons(memory)
    memory = windows[-1]
    configs = [
        replace(base, family=family, window=w) for family in ("dpca", "cva") for w in windows
    ]
    configs.append(replace(base, family="autoencoder", window=1))
    configs += [replace(base, family="autoencoder", window=w) for w in windows[:2]]
    configs.append(replace(base, family="conv", window=memory))
    assert all(config.family in FAMILIES for config in configs)
    return configs


def horizons(memory: int) -> list[int]:
    """The windows candidates span: 2 readings, half the process's memory and all of it
    (within 2..MAX_WINDOW).

    >>> horizons(15), horizons(40), horizons(1)
    ([2, 8, 15], [2, 10, 20], [2])
    """
    memory = max(2, min(MAX_WINDOW, memory))
    return sorted({2, max(2, (memory + 1) // 2), memory})


def family_candidates(base: TrainConfig, memory: int, families: Sequence[str]) -> list[TrainConfig]:
    """Every named family over 2 readings, half the process's memory and all of it (and
    over 1 reading for the dense and variational autoencoders); each network family with
    both residual statistics (the sum of squares, whitened: models/whitened.py). In the
    order of FAMILIES, then window, squares before whitened.

    >>> [(c.window, c.residual) for c in family_candidates(TrainConfig(), 4, ["conv"])]
    [(2, 'squares'), (2, 'whitened'), (4, 'squares'), (4, 'whitened')]
    """
    unknown = sorted(set(families) - set(FAMILIES))
    if unknown or not families:
        raise ValueError(f"families must name some of {', '.join(FAMILIES)}, got {unknown}")
    windows = horizons(memory)
    configs = []
    for family in (f for f in FAMILIES if f in families):
        if family in LINEAR_FAMILIES:
            configs += [replace(base, family=family, window=w, residual="squares") for w in windows]
            continue
        own = [1, *windows] if family in ("autoencoder", "vae") else windows
        configs += [
            replace(base, family=family, window=w, residual=residual)
            for w in own
            for residual in RESIDUALS
        ]
    return configs


def copies_input(config: TrainConfig, n_sensors: int) -> bool:
    """Whether an autoencoder candidate's bottleneck, with its default sizes, is not narrower
    than what it reconstructs (per reading for the convolutional one, whose latent channels
    meet every reading): it can learn to copy faults, so selection passes it over. With one
    sensor every default autoencoder is such a model.

    >>> copies_input(TrainConfig(family="autoencoder", window=1), 1)
    True
    >>> copies_input(TrainConfig(family="autoencoder", window=1), 8)
    False
    """
    if config.family in LINEAR_FAMILIES:
        return False
    resolved = config.resolved(n_sensors)
    assert resolved.latent is not None  # resolved() fills it for every network family
    width = n_sensors if config.family == "conv" else config.window * n_sensors
    return resolved.latent >= width


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
    z = (np.asarray(calibration_values, dtype=np.float64) - result.scaler_mean) / (
        result.scaler_scale
    )
    window = result.window

    def scores(values: np.ndarray) -> np.ndarray:
        return np.asarray(score_readings(result.module, values, window).mean(axis=1), np.float64)

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


def outcomes(run: InjectedRun, smoothing: str, quantile: float) -> Outcomes:
    """Each fault's detection rate and delay, each run smoothed by ``smoothing`` and compared
    with the threshold ``train`` would set on the smoothed clean run, or on the run's
    out-of-time ``reference`` when it has one (refusals included:
    :class:`~models.threshold.DegenerateCalibration` when it would refuse one)."""
    how = parse_smoothing(smoothing)
    parts = [run.clean] if run.reference is None else run.reference
    threshold = estimate_threshold(
        np.concatenate([smooth(part, how) for part in parts]), quantile, source="selection"
    ).value
    # Every fault starts at the same reading: one excursion of the clean run just after it
    # would otherwise be every fault's "detection", and the sooner, the longer a candidate
    # carries it (a window, an EWMA); more so at an out-of-time threshold, which the clean
    # run can exceed more often than the quantile says. The detection rate keeps those
    # flags: every candidate flags about the same share of the clean run, which the mean
    # over the readings after the onset shares out, where the first flag does not.
    clean_flagged = smooth(run.clean, how) > threshold
    by_kind: dict[str, list[float]] = {kind: [] for kind in KINDS}
    rates: list[float] = []
    delays: list[float] = []
    for fault, raw in run.faulty:
        scores = smooth(raw, how)
        # Score i is of the window ending at reading i + window - 1.
        if fault.kind == "spike":  # the spiked readings only, not the normal ones between
            after = scores[
                np.arange(fault.onset, len(raw) + run.window - 1, SPIKE_EVERY) - run.window + 1
            ]
        else:  # from the window ending at the onset
            start = max(0, fault.onset - run.window + 1)
            after = scores[start:]
            added = (after > threshold) & ~clean_flagged[start:]
            delays.append(float(np.argmax(added)) if added.any() else float(len(after)))
        rate = float(np.mean(after > threshold))
        by_kind[fault.kind].append(rate)
        rates.append(rate)
    detected = {kind: float(np.mean(values)) for kind, values in by_kind.items() if values}
    return Outcomes(detected, tuple(rates), tuple(delays))


def detection(run: InjectedRun, smoothing: str, quantile: float) -> dict[str, float]:
    """Detection rate per kind of fault (see :func:`outcomes`)."""
    return outcomes(run, smoothing, quantile).detection


def multiply_adds(result: TrainResult) -> int:
    """Multiply-adds of the scoring module's matrix products and convolutions for one scored
    reading (one window), counted by torch's FLOP counter (two FLOPs per multiply-add)."""
    x = torch.zeros(1, result.window, len(result.scaler_mean))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        result.module(x)
    return int(counter.get_total_flops()) // 2


def injected_detection(
    result: TrainResult, calibration_values: np.ndarray, *, seed: int = 0
) -> dict[str, float]:
    """Detection rate per kind of fault injected into ``calibration_values``, at the
    result's own smoothing and quantile."""
    run = injected_run(result, calibration_values, seed=seed)
    return detection(run, result.config.smoothing, result.config.quantile)


def split_false_alarms(clean: np.ndarray, smoothing: str, quantile: float) -> float:
    """The limit from one half of the clean run, false alarms counted on the other, both
    ways round and averaged. Noisy on a short run, but a smoothing that holds an excursion
    for long shows here as a rate well above ``1 - quantile``."""
    how = parse_smoothing(smoothing)
    half = len(clean) // 2
    first, second = smooth(clean[:half], how), smooth(clean[half:], how)
    rates = [
        float(np.mean(b > np.quantile(a, quantile, method="higher")))
        for a, b in ((first, second), (second, first))
    ]
    return float(np.mean(rates))


def weigh_smoothings(
    run: InjectedRun,
    config: TrainConfig,
    smoothings: tuple[str, ...],
    seconds: float,
    cost: int = 0,
) -> CandidateScore:
    """The candidate at the smoothing :func:`apply_rule` picks among those whose split-half
    false alarms stay within TRANSFER_SLACK x ``1 - quantile`` (or, if none does, the one
    that carries best)."""
    weighed = []
    for spec in smoothings:
        try:
            found = outcomes(run, spec, config.quantile)
        except DegenerateCalibration:
            continue  # train would refuse the threshold this smoothing leaves
        split = split_false_alarms(run.clean, spec, config.quantile)
        weighed.append(
            CandidateScore(
                replace(config, smoothing=spec),
                found.detection,
                seconds,
                split,
                found.rates,
                found.delays,
                cost,
            )
        )
    if not weighed:  # every smoothing flattens the tail: train will say why
        return CandidateScore(config, {}, seconds, 1.0, multiply_adds=cost)
    allowed = [w for w in weighed if w.split_false_alarms <= TRANSFER_SLACK * (1 - config.quantile)]
    if not allowed:
        allowed = [min(weighed, key=lambda w: w.split_false_alarms)]
    winner = next(o for o in apply_rule(allowed) if o.out_at is None)
    return replace(winner, out_at=None)


MIN_READINGS = 100
"""A calibration run shorter than this (scored readings) cannot rank smoothings: too few
readings lie beyond its quantile on either side of the injected onset."""


def choose_smoothing(
    result: TrainResult,
    calibration_values: np.ndarray,
    smoothings: tuple[str, ...] = CANDIDATES,
    *,
    seconds: float = 0.0,
) -> tuple[TrainResult, CandidateScore | None]:
    """One trained model at the smoothing the rule picks (see weigh_smoothings); unchanged,
    with None, when the calibration run is too short to tell."""
    if len(calibration_values) - result.window + 1 < MIN_READINGS:
        return result, None
    run = injected_run(result, calibration_values, seed=result.config.seed)
    score = weigh_smoothings(run, result.config, smoothings, seconds, multiply_adds(result))
    return result.with_smoothing(score.config.smoothing), score


def select(
    values: np.ndarray,
    sensors: list[str],
    base: TrainConfig,
    *,
    calibration_values: np.ndarray | None,
    calibration_source: str | None = None,
    configs: list[TrainConfig] | None = None,
    families: Sequence[str] | None = None,
    smoothings: tuple[str, ...] = CANDIDATES,
    report: Callable[[CandidateScore], None] | None = None,
) -> Selection:
    """Train every candidate (``configs``, or the bounded set of ``families``, or the
    default set) and keep the one :func:`apply_rule` picks.

    Without a separate calibration run the faults go into the training file's calibration
    tail, as the threshold does."""
    memory = autocorrelation_window(values)
    tried = candidates(base, memory, families) if configs is None else configs
    if configs is None:
        tried = [c for c in tried if not copies_input(c, values.shape[1])]
    scored: list[tuple[CandidateScore, TrainResult]] = []
    refusals: list[ValueError] = []
    for config in tried:
        started = time.perf_counter()
        try:
            result = train(
                values,
                sensors,
                config,
                calibration_values=calibration_values,
                calibration_source=calibration_source,
            )
        except DegenerateCalibration as exc:
            refusals.append(exc)  # this candidate's errors on the calibration run tie
            continue
        except (BeyondFloat32, TrainingDiverged, CalibrationUnscorable):
            raise  # about the data or the settings, not this candidate
        except ValueError as exc:
            refusals.append(exc)  # too little data for this window: not a candidate here
            continue
        calibration = (
            calibration_values
            if calibration_values is not None
            else values[slice(*result.splits["calibration"])]
        )
        run = injected_run(result, calibration, seed=base.seed)
        if calibration_values is None:  # ranked at the threshold the model will ship with
            run = replace(run, reference=out_of_time_scores(result, values))
        score = weigh_smoothings(
            run, config, smoothings, time.perf_counter() - started, multiply_adds(result)
        )
        if report is not None:
            report(score)
        scored.append((score, result))
    if not scored:
        raise refusals[0]
    judged = apply_rule([score for score, _ in scored])
    first = next(i for i, score in enumerate(judged) if score.out_at is None)
    order = sorted(range(len(judged)), key=lambda i: (i != first, -judged[i].mean_detection, i))
    ranking = [judged[i] for i in order]
    winner = scored[first][1].with_smoothing(judged[first].config.smoothing)
    return Selection(ranking, memory, winner)
