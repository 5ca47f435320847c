"""Choosing a model on normal data only: candidates ranked by the faults they catch when
faults are injected into the calibration run.

The rule (named in docs/training.md): every candidate is trained on the training split and
its threshold set on the clean calibration run at the configured quantile; then each kind
of fault in :mod:`models.inject` is injected into copies of the calibration run
(:mod:`models.injected` measures what it does with them). A candidate's detection rate is
the share of readings after the onset that score above its threshold, averaged over the
faults; its delay the readings from the onset to the first one flagged that the clean run
does not flag (a false alarm is no detection); its cost the multiply-adds per scored
reading. The one-standard-error rule (Breiman et al. 1984) is applied to detection, then to
delay (paired over the same injected faults), and the cheapest survivor wins
(:func:`apply_rule`). Labelled fault data is never read.

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
from models.inject import KINDS
from models.injected import (
    FAULTS_PER_KIND,
    injected_run,
)
from models.inputs import BeyondFloat32, ConstantSensorMoves
from models.operating_point import CANDIDATES
from models.out_of_time import out_of_time_scores
from models.selection_rule import CandidateScore, apply_rule
from models.smoothing_choice import TRANSFER_SLACK, glitch_pages, weigh_smoothings
from models.threshold import CalibrationUnscorable, DegenerateCalibration
from models.train import TrainResult, train
from models.train_config import FAMILIES, LINEAR_FAMILIES, TrainConfig
from models.whitened import RESIDUALS

MAX_WINDOW = 20


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
            "quantile's and, where any does, at which a lone spike on one sensor raises no "
            "alert",
            "autocorrelation_window": self.autocorrelation_window,
            "fault_kinds": list(KINDS),
            "faults_per_kind": FAULTS_PER_KIND,
            "ranking": [
                {
                    "family": score.config.family,
                    "window": score.config.window,
                    "residual": score.config.residual,
                    "smoothing": score.config.smoothing,
                    # None where every smoothing left a refused threshold: nothing measured
                    "split_false_alarms": round(score.split_false_alarms, 4)
                    if score.detection
                    else None,
                    "mean_detection": round(score.mean_detection, 4),
                    "clean_flagged": round(score.mean_clean, 4),
                    "detection": {k: round(v, 4) for k, v in score.detection.items()},
                    "mean_delay": round(score.mean_delay, 2),
                    "multiply_adds": score.multiply_adds,
                    "glitch_pages": score.glitch_pages,
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


def multiply_adds(result: TrainResult) -> int:
    """Multiply-adds of the scoring module's matrix products and convolutions for one scored
    reading (one window), counted by torch's FLOP counter (two FLOPs per multiply-add)."""
    x = torch.zeros(1, result.window, len(result.scaler_mean))
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        result.module(x)
    return int(counter.get_total_flops()) // 2


MIN_READINGS = 100
"""A calibration run shorter than this (scored readings) cannot rank smoothings: too few
readings lie beyond its quantile on either side of the injected onset."""


def choose_smoothing(
    result: TrainResult,
    calibration_values: np.ndarray,
    smoothings: tuple[str, ...] = CANDIDATES,
    *,
    seconds: float = 0.0,
    training_values: np.ndarray | None = None,
) -> tuple[TrainResult, CandidateScore | None]:
    """One trained model at the smoothing the rule picks (see weigh_smoothings); unchanged,
    with None, when the calibration run is too short to tell. ``training_values``: the
    training file, when ``calibration_values`` is its tail (no calibration run): each
    smoothing is then weighed at the threshold it would ship with, from out-of-time errors
    where the tail is too short (models/out_of_time.py), as :func:`select` weighs."""
    if len(calibration_values) - result.window + 1 < MIN_READINGS:
        return result, None
    run = injected_run(result, calibration_values, seed=result.config.seed)
    if training_values is not None:
        run = replace(run, reference=out_of_time_scores(result, training_values))
    score = weigh_smoothings(
        run,
        result.config,
        smoothings,
        seconds,
        multiply_adds(result),
        pages=glitch_pages(result, calibration_values, run),
    )
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
        except (BeyondFloat32, ConstantSensorMoves, TrainingDiverged, CalibrationUnscorable):
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
            run,
            config,
            smoothings,
            time.perf_counter() - started,
            multiply_adds(result),
            pages=glitch_pages(result, calibration, run),
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
