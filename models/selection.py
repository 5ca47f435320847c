"""Choosing a model on normal data only: candidates ranked by the faults they catch when
faults are injected into the calibration run.

The rule (named in docs/training.md): every candidate is trained on the training split and
its threshold set on the clean calibration run at the configured quantile; then each kind
of fault in :mod:`models.inject` is injected into copies of the calibration run, and the
candidate's detection rate is the share of readings after the onset that score above its
threshold, averaged over the faults. The highest mean detection rate wins; ties go to the
earlier (cheaper) candidate. Labelled fault data is never read.

Every candidate flags the same share of the clean calibration run by construction, so the
ranking compares detection at equal false alarms. Validation loss is not used: it measures
how well a model reproduces normal data, not how well it tells faults from it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from models.inject import KINDS, SPIKE_EVERY, fault_plan, inject
from models.train import (
    FAMILIES,
    BeyondFloat32,
    CalibrationUnscorable,
    TrainConfig,
    TrainingDiverged,
    TrainResult,
    score_readings,
    train,
)

MAX_WINDOW = 20
FAULTS_PER_KIND = 4


@dataclass(frozen=True)
class CandidateScore:
    config: TrainConfig
    detection: dict[str, float]
    """Detection rate per kind of injected fault."""
    seconds: float

    @property
    def label(self) -> str:
        return f"{self.config.family} window {self.config.window}"

    @property
    def mean_detection(self) -> float:
        return float(np.mean(list(self.detection.values())))


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
            "rule": "highest mean detection of faults injected into the calibration run, "
            "at the threshold's false-alarm rate on the clean run",
            "autocorrelation_window": self.autocorrelation_window,
            "fault_kinds": list(KINDS),
            "faults_per_kind": FAULTS_PER_KIND,
            "ranking": [
                {
                    "family": score.config.family,
                    "window": score.config.window,
                    "mean_detection": round(score.mean_detection, 4),
                    "detection": {k: round(v, 4) for k, v in score.detection.items()},
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


def candidates(base: TrainConfig, memory: int) -> list[TrainConfig]:
    """The bounded set tried by default: the linear references over 2 readings, half the
    process's memory and all of it (within 2..MAX_WINDOW), today's single-reading
    autoencoder, autoencoders over the two shorter windows and a temporal convolutional one
    over all of it. Cheapest first, so a tie keeps the cheaper model."""
    memory = min(MAX_WINDOW, memory)
    windows = sorted({2, max(2, (memory + 1) // 2), memory})
    configs = [
        replace(base, family=family, window=w) for family in ("dpca", "cva") for w in windows
    ]
    configs.append(replace(base, family="autoencoder", window=1))
    configs += [replace(base, family="autoencoder", window=w) for w in windows[:2]]
    configs.append(replace(base, family="conv", window=memory))
    assert all(config.family in FAMILIES for config in configs)
    return configs


def injected_detection(
    result: TrainResult, calibration_values: np.ndarray, *, seed: int = 0
) -> dict[str, float]:
    """Detection rate per kind of fault injected into ``calibration_values`` at the
    result's threshold."""
    z = (np.asarray(calibration_values, dtype=np.float64) - result.scaler_mean) / (
        result.scaler_scale
    )
    window = result.window
    threshold = result.threshold.value
    rng = np.random.default_rng(seed)
    rates: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for fault in fault_plan(len(z), z.shape[1], per_kind=FAULTS_PER_KIND, seed=seed):
        faulty = inject(z, fault, rng) * result.scaler_scale + result.scaler_mean
        scores = score_readings(result.module, faulty, window).mean(axis=1)
        # Score i is of the window ending at reading i + window - 1.
        if fault.kind == "spike":  # the spiked readings only, not the normal ones between
            after = scores[np.arange(fault.onset, len(z), SPIKE_EVERY) - window + 1]
        else:
            after = scores[max(0, fault.onset - window + 1) :]
        rates[fault.kind].append(float(np.mean(after > threshold)))
    return {kind: float(np.mean(values)) for kind, values in rates.items()}


def select(
    values: np.ndarray,
    sensors: list[str],
    base: TrainConfig,
    *,
    calibration_values: np.ndarray | None,
    calibration_source: str | None = None,
    configs: list[TrainConfig] | None = None,
    report: Callable[[CandidateScore], None] | None = None,
) -> Selection:
    """Train every candidate and keep the one that catches most injected faults.

    Without a separate calibration run the faults go into the training file's calibration
    tail, as the threshold does."""
    memory = autocorrelation_window(values)
    tried = candidates(base, memory) if configs is None else configs
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
        detection = injected_detection(result, calibration, seed=base.seed)
        score = CandidateScore(config, detection, time.perf_counter() - started)
        if report is not None:
            report(score)
        scored.append((score, result))
    if not scored:
        raise refusals[0]
    order = sorted(range(len(scored)), key=lambda i: (-scored[i][0].mean_detection, i))
    ranking = [scored[i][0] for i in order]
    return Selection(ranking, memory, scored[order[0]][1])
