"""Drift of the error distribution: recent confirmed normals against the calibration reference.

Two-sample Kolmogorov–Smirnov tests compare the manifest's reference errors (computed on
calibration readings at training time) with the errors of readings operators recently
confirmed as normal: once on the reading error (the row mean, the quantity the threshold
applies to) and once per sensor. Per-sensor p-values are corrected with Benjamini–Hochberg,
and a test counts only when its KS statistic also reaches a minimum effect size: at a few
thousand samples KS rejects differences too small to matter. The two families share
``alpha`` (half each, Bonferroni), so with nothing shifted a recommendation other than
``none`` comes about ``alpha`` of the time (measured in docs/recalibration.md). Each test
counts a sample at its effective size (:func:`drift_report`): labels given to a stretch of
consecutive readings are worth far fewer independent readings than their count, by the
memory normal operation has (:class:`NormalMemory`, measured on the calibration run).

Recommendation rule (:func:`recommend`):

- ``none``: too few recent normals to judge, or nothing drifted;
- ``recalibrate``: the reading-error distribution moved by a moderate amount
  (``min_effect ≤ D < retrain_effect``): a new threshold absorbs it;
- ``retrain``: it moved by ``D ≥ retrain_effect`` (the calibration no longer describes normal
  operation, so a threshold from a few labels is not a safe fix), or some sensors drifted
  while the reading error did not (a local change the threshold cannot see, which only a
  model trained on the new behaviour can).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from service.calibration.evidence import (
    NormalMemory,
    effective_size,
    normal_memory,
    span_lengths,
)

Recommendation = Literal["none", "recalibrate", "retrain"]
RECOMMENDATIONS: tuple[Recommendation, ...] = ("none", "recalibrate", "retrain")


@dataclass(frozen=True, slots=True)
class DriftPolicy:
    alpha: float = 0.01
    min_effect: float = 0.1
    retrain_effect: float = 0.3
    min_samples: int = 50

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0 < self.min_effect < self.retrain_effect <= 1:
            raise ValueError("need 0 < min_effect < retrain_effect <= 1")
        if self.min_samples < 2:
            raise ValueError("min_samples must be at least 2")


@dataclass(frozen=True, slots=True)
class SensorDrift:
    sensor: str
    statistic: float
    pvalue: float
    adjusted_pvalue: float
    drifted: bool


@dataclass(frozen=True, slots=True)
class DriftReport:
    n_reference: int
    n_recent: int
    sufficient: bool
    statistic: float | None
    pvalue: float | None
    drifted: bool
    sensors: tuple[SensorDrift, ...]
    recommendation: Recommendation
    reason: str
    effective_reference: float | None = None
    """How many independent readings the reading errors are worth (see :func:`drift_report`);
    None when not judged."""
    effective_recent: float | None = None

    @property
    def drifted_sensors(self) -> list[str]:
        return [s.sensor for s in self.sensors if s.drifted]


def benjamini_hochberg(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """BH-adjusted p-values (step-up, monotone, capped at 1).

    >>> [round(float(p), 3) for p in benjamini_hochberg([0.01, 0.04, 0.03, 0.5])]
    [0.04, 0.053, 0.053, 0.5]
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum.accumulate(ranked[::-1])[::-1]
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(adjusted_sorted, 1.0)
    return adjusted


def _ks(
    reference: np.ndarray, recent: np.ndarray, sizes: tuple[float, float]
) -> tuple[float, float]:
    """KS statistic D and its p-value with the samples counted at ``sizes`` (their
    effective sizes), by the asymptotic law ks_2samp's asymptotic method uses."""
    statistics, pvalues = _ks_columns(
        reference[:, None], recent[:, None], np.array([sizes[0]]), np.array([sizes[1]])
    )
    return float(statistics[0]), float(pvalues[0])


def _ks_columns(
    reference: np.ndarray, recent: np.ndarray, m: np.ndarray, n: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_ks` for every column at once (column ``j`` counted at sizes ``m[j]``,
    ``n[j]``): one call each to scipy instead of one per sensor."""
    statistics = np.asarray(stats.ks_2samp(reference, recent, axis=0).statistic, dtype=np.float64)
    en = np.maximum(1, np.round(m * n / (m + n)))
    return statistics, np.asarray(stats.kstwo.sf(statistics, en), dtype=np.float64)


def recommend(
    *,
    sufficient: bool,
    statistic: float | None,
    drifted: bool,
    sensors_drifted: int,
    policy: DriftPolicy,
    effective_recent: float | None = None,
) -> tuple[Recommendation, str]:
    """The rule in the module docstring, as code. ``effective_recent``: how many independent
    readings the recent normals are worth, named when a shift of the minimum size or more
    is too weakly supported to count."""
    if not sufficient or statistic is None:
        return "none", f"fewer than {policy.min_samples} recent confirmed normals: not judged"
    if drifted and statistic >= policy.retrain_effect:
        return "retrain", (
            f"reading errors shifted strongly (KS D={statistic:.3f} ≥ {policy.retrain_effect}): "
            "the calibration no longer describes normal operation"
        )
    if drifted:
        return "recalibrate", (
            f"reading errors shifted moderately (KS D={statistic:.3f}); "
            f"{sensors_drifted} sensor(s) drifted: a new threshold absorbs it"
        )
    if sensors_drifted:
        return "retrain", (
            f"{sensors_drifted} sensor(s) drifted while the reading error did not: "
            "a local change the threshold cannot see"
        )
    if statistic >= policy.min_effect and effective_recent is not None:
        return "none", (
            f"reading errors moved (KS D={statistic:.3f}) but not beyond chance for recent "
            f"normals worth about {effective_recent:.0f} independent readings (labelled "
            "stretches share the model's memory): label more normal readings, or readings "
            "further apart in time"
        )
    return "none", "no drift beyond the minimum effect size"


def drift_report(
    reference_errors: np.ndarray,
    recent_sensor_errors: np.ndarray,
    sensors: Sequence[str],
    policy: DriftPolicy,
    memory: NormalMemory | None = None,
    spans: Sequence[str] | None = None,
) -> DriftReport:
    """Compare per-sensor squared errors ``(n, n_sensors)`` of recent normals with the
    reference. The reference counts at its own effective size (its rows in time order).
    The recent normals count by span (``spans``: one key per row, the rows labelled in one
    request for one stream; None: all one span): a span of ``L`` labels counts
    ``1 + (L - 1) / tau``, ``tau`` from ``memory`` (the dependence consecutive normal
    readings have), so a reading labelled alone counts one and a long stretch its length
    over the memory; all count one each when the model's memory is not known. Their own
    autocorrelation is not used: a shift inside the recent window would read as memory and
    hide itself."""
    reference = np.asarray(reference_errors, dtype=np.float64)
    recent = np.asarray(recent_sensor_errors, dtype=np.float64).reshape(-1, len(sensors))
    if reference.ndim != 2 or reference.shape[1] != len(sensors):
        raise ValueError(f"reference errors have shape {reference.shape}, need (n, {len(sensors)})")
    finite = np.isfinite(recent).all(axis=1)
    recent = recent[finite]
    n_recent = int(recent.shape[0])
    keys = ["" for _ in range(n_recent)] if spans is None else np.asarray(spans)[finite].tolist()
    lengths = span_lengths(keys)
    sufficient = n_recent >= policy.min_samples
    if not sufficient:
        rec, reason = recommend(
            sufficient=False, statistic=None, drifted=False, sensors_drifted=0, policy=policy
        )
        return DriftReport(
            n_reference=int(reference.shape[0]),
            n_recent=n_recent,
            sufficient=False,
            statistic=None,
            pvalue=None,
            drifted=False,
            sensors=(),
            recommendation=rec,
            reason=reason,
        )
    level = policy.alpha / 2  # the reading-error test and the sensors' family share alpha
    reading_memory = 1.0 if memory is None else memory.reading
    sensor_memory = (1.0,) * len(sensors) if memory is None else memory.sensors

    own = normal_memory(reference)  # the reference's rows, in time order
    sizes = (len(reference) / own.reading, effective_size(lengths, reading_memory))
    statistic, pvalue = _ks(reference.mean(axis=1), recent.mean(axis=1), sizes)
    drifted = pvalue < level and statistic >= policy.min_effect
    sensor_statistics, sensor_pvalues = _ks_columns(
        reference,
        recent,
        len(reference) / np.asarray(own.sensors, dtype=np.float64),
        np.array([effective_size(lengths, tau) for tau in sensor_memory]),
    )
    per_sensor = list(zip(sensor_statistics.tolist(), sensor_pvalues.tolist(), strict=True))
    adjusted = benjamini_hochberg([p for _, p in per_sensor])
    sensor_results = tuple(
        SensorDrift(
            sensor=name,
            statistic=d,
            pvalue=p,
            adjusted_pvalue=float(q),
            drifted=bool(q < level and d >= policy.min_effect),
        )
        for name, (d, p), q in zip(sensors, per_sensor, adjusted, strict=True)
    )
    n_drifted = sum(s.drifted for s in sensor_results)
    rec, reason = recommend(
        sufficient=True,
        statistic=statistic,
        drifted=drifted,
        sensors_drifted=n_drifted,
        policy=policy,
        effective_recent=sizes[1],
    )
    return DriftReport(
        n_reference=int(reference.shape[0]),
        n_recent=n_recent,
        effective_reference=sizes[0],
        effective_recent=sizes[1],
        sufficient=True,
        statistic=statistic,
        pvalue=pvalue,
        drifted=drifted,
        sensors=sensor_results,
        recommendation=rec,
        reason=reason,
    )
