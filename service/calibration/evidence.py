"""What a sample of labelled readings is worth as evidence.

Operators label stretches of consecutive readings, and consecutive readings of a process
share its memory: a labelled stretch is worth far fewer independent readings than its count.
Drift (:mod:`service.calibration.drift`) and recalibration
(:mod:`service.calibration.recalibrator`) both count their samples here: normal operation's
memory (:class:`NormalMemory`, measured on the calibration run by ``models train``), the
effective size of labels given in spans (:func:`effective_size`), an interval on a rate
counted at such sizes (:func:`clopper_pearson`), and how often normal operation was seen
above a threshold (:class:`Exceedance`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from scipy import stats

from service.scoring.decision import reading_errors
from service.scoring.smoothing import make_smoother

if TYPE_CHECKING:  # a type only: the registry would load torch for it
    from service.scoring.registry import LoadedModel


def autocorrelation_time(series: np.ndarray) -> float:
    """The integrated autocorrelation time ``tau`` of a series in time order (at least 1):
    ``n`` such values are worth ``n / tau`` independent ones. Geyer's initial monotone
    sequence estimator: sums of neighbouring autocorrelation pairs, while positive and
    decreasing.

    >>> rng = np.random.default_rng(0)
    >>> white = rng.normal(size=4000)
    >>> 1.0 <= autocorrelation_time(white) < 1.2
    True
    >>> ar = np.zeros(4000)
    >>> for i in range(1, 4000):  # AR(1) with phi 0.9: tau = (1 + 0.9) / (1 - 0.9) = 19
    ...     ar[i] = 0.9 * ar[i - 1] + white[i]
    >>> 12 < autocorrelation_time(ar) < 30
    True
    """
    x = np.asarray(series, dtype=np.float64)
    n = x.size
    centred = x - x.mean()
    variance = float(centred @ centred)
    if n < 4 or variance <= 1e-20 * float(x @ x):  # constant, up to the mean's rounding
        return 1.0
    spectrum = np.fft.rfft(centred, 2 * n)
    rho = np.fft.irfft(spectrum * np.conj(spectrum))[:n] / variance
    pairs = rho[: n - n % 2].reshape(-1, 2).sum(axis=1)  # (rho_0 + rho_1), (rho_2 + rho_3), ...
    ended = np.flatnonzero(pairs <= 0.0)
    pairs = np.minimum.accumulate(pairs[: ended[0] if ended.size else pairs.size])
    return max(1.0, float(2.0 * pairs.sum() - 1.0))


@dataclass(frozen=True, slots=True)
class NormalMemory:
    """How long normal operation remembers, in consecutive scored readings: the integrated
    autocorrelation time of the reading error and of each sensor's error over the
    calibration run (``models train`` records it; see :func:`normal_memory`)."""

    reading: float
    sensors: tuple[float, ...]
    score: float | None = None
    """Of the score the threshold applies to, the reading error smoothed as the model
    declares (longer than ``reading`` when it is smoothed); None when not known."""
    exceedance: float | None = None
    """Of whether that score lies above the threshold calibrated on the run: exceedances come
    in excursions, which may outlast the score's own memory, and then a share of readings
    above a threshold is worth fewer independent readings than that memory says; None when
    not known."""

    def counting(self, smoothed: bool) -> float | None:
        """What a stretch's readings above a threshold are counted by: the memory of the
        score the threshold applies to (the smoothed one's when ``smoothed``; None when that
        is not known), or that of its exceedances where they remember longer."""
        score = self.score if smoothed else self.reading
        if score is None:
            return None
        return max(score, self.exceedance or 1.0)


def normal_memory(
    calibration_errors: np.ndarray,
    smoothed_scores: np.ndarray | None = None,
    threshold: float | None = None,
) -> NormalMemory:
    """From a calibration run's per-sensor squared errors ``(n, n_sensors)`` in time order,
    the run's reading errors smoothed as the model declares, when given, and the threshold
    calibrated on the run (on those smoothed scores, else on the reading errors), when
    given."""
    errors = np.asarray(calibration_errors, dtype=np.float64)
    reading = errors.mean(axis=1)
    scores = reading if smoothed_scores is None else np.asarray(smoothed_scores)
    return NormalMemory(
        reading=autocorrelation_time(reading),
        sensors=tuple(autocorrelation_time(errors[:, j]) for j in range(errors.shape[1])),
        score=None if smoothed_scores is None else autocorrelation_time(smoothed_scores),
        exceedance=None if threshold is None else exceedance_memory(scores, threshold),
    )


def exceedance_memory(scores: np.ndarray, threshold: float) -> float:
    """How long whether a score lies above ``threshold`` remembers, over scores in time
    order.

    >>> excursions = np.zeros(4000)
    >>> for start in range(0, 4000, 400):  # ten excursions of 30 readings
    ...     excursions[start : start + 30] = 2.0
    >>> exceedance_memory(excursions, 1.0) > 20
    True
    """
    above = np.asarray(scores, dtype=np.float64) > threshold
    return autocorrelation_time(above.astype(np.float64))


def model_memory(model: LoadedModel) -> NormalMemory | None:
    """How long the model's normal operation remembers: as ``train`` measured it on the
    whole calibration run (``normal_memory`` in the manifest's metrics), else, or for what
    it does not record (the smoothed scores' and the exceedances', recorded since), from the
    reference when it is that whole run; None when neither says (an artifact from before 7
    Dec 2026 whose reference is a subsample)."""
    recorded = _recorded_memory(model.manifest.metrics.get("normal_memory"))
    if recorded is not None and len(recorded.sensors) != model.manifest.n_sensors:
        recorded = None
    reference = model.artifact.reference_errors
    if len(reference) < model.manifest.threshold.n_calibration:  # a sample of the run
        return recorded
    smoothing = model.manifest.smoothing
    if recorded is not None and recorded.exceedance is not None:
        if recorded.score is not None or smoothing is None:
            return recorded
    errors = reading_errors(reference)
    smoothed = None if smoothing is None else make_smoother(smoothing).update_many(errors)
    threshold = model.manifest.threshold.value
    if recorded is None:
        return normal_memory(reference, smoothed, threshold)
    return replace(
        recorded,
        score=recorded.score
        if recorded.score is not None or smoothed is None
        else autocorrelation_time(smoothed),
        exceedance=recorded.exceedance
        if recorded.exceedance is not None
        else exceedance_memory(errors if smoothed is None else smoothed, threshold),
    )


def _recorded_memory(recorded: object) -> NormalMemory | None:
    """The manifest's ``normal_memory`` when it is what ``train`` writes (finite times of at
    least one reading), else None: a hand-edited manifest falls back, never fails a check."""
    if not isinstance(recorded, dict):
        return None
    reading, sensors = recorded.get("reading"), recorded.get("sensors")
    if not isinstance(sensors, list):
        return None
    times = [_memory_time(v) for v in [reading, *sensors]]
    if any(t is None for t in times):
        return None
    kept = [t for t in times if t is not None]
    return NormalMemory(
        reading=kept[0],
        sensors=tuple(kept[1:]),
        score=_memory_time(recorded.get("score")),
        exceedance=_memory_time(recorded.get("exceedance")),
    )


def _memory_time(value: object) -> float | None:
    """``value`` when ``train`` could have written it (a finite number of at least one
    reading), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 1 else None


def span_lengths(spans: Sequence[str]) -> np.ndarray:
    """How many labels each span holds (``spans``: one key per label, the labels one request
    gave one stream sharing a key)."""
    return np.array(list(Counter(spans).values()), dtype=np.float64)


def effective_size(lengths: np.ndarray, tau: float) -> float:
    """How many independent readings spans of ``lengths`` consecutive labels are worth: each
    ``1 + (L - 1) / tau``, so a reading labelled alone counts one and a long stretch its length
    over the memory ``tau``.

    >>> effective_size(np.array([1.0, 1.0, 101.0]), 10.0)
    13.0
    """
    return float(np.sum(1.0 + (np.asarray(lengths, dtype=np.float64) - 1.0) / tau))


def clopper_pearson(
    successes: float, trials: float, confidence: float = 0.95
) -> tuple[float, float]:
    """The Clopper-Pearson interval on a rate, also on effective (fractional) counts: the
    beta quantiles need no integers.

    >>> [round(x, 4) for x in clopper_pearson(2, 10)]
    [0.0252, 0.5561]
    """
    alpha = 1 - confidence
    low = (
        0.0
        if successes <= 0
        else float(stats.beta.ppf(alpha / 2, successes, trials - successes + 1))
    )
    high = (
        1.0
        if successes >= trials
        else float(stats.beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    )
    return low, high


@dataclass(frozen=True, slots=True)
class Exceedance:
    """How often normal operation was seen above the threshold in force: ``n_above`` of
    ``n`` readings, worth ``effective`` independent ones, from ``source``. ``with_frozen``:
    the same readings and those the learning freeze kept out (labelled normal, but scored
    during an alert: normal operation or a fault that lasts); None when it kept none out."""

    n_above: int
    n: int
    effective: float
    source: str
    with_frozen: Exceedance | None = None

    @property
    def share(self) -> float:
        return self.n_above / self.n

    def interval(self, confidence: float) -> tuple[float, float]:
        """On the rate, the counts taken at the effective size. With frozen readings, every
        rate that either account of them allows (a fault, left out; normal operation,
        counted): a threshold moves only on what holds both ways.

        >>> alone = Exceedance(n_above=0, n=600, effective=600.0, source="labels")
        >>> alone.interval(0.99)[1] < 0.01  # none above: the threshold is too high
        True
        >>> frozen = Exceedance(n_above=10, n=610, effective=610.0, source="labels")
        >>> replace(alone, with_frozen=frozen).interval(0.99)[1] > 0.01  # unless those count
        True
        """
        low, high = clopper_pearson(self.share * self.effective, self.effective, confidence)
        if self.with_frozen is None:
            return low, high
        other_low, other_high = self.with_frozen.interval(confidence)
        return min(low, other_low), max(high, other_high)


def sample_exceedance(
    values: Sequence[float] | np.ndarray,
    current: float,
    *,
    spans: Sequence[str] | None = None,
    memory: float = 1.0,
    source: str = "confirmed normals",
) -> Exceedance | None:
    """Of readings drawn as normal operation runs: ``spans`` (one key per value, the values
    of one request for one stream sharing one) counted by ``memory``; without spans each
    value alone. None when no value is finite.

    >>> e = sample_exceedance(np.arange(100.0), 97.5)
    >>> e.n_above, e.share, e.effective
    (2, 0.02, 100.0)
    """
    sample = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(sample)
    if not finite.any():
        return None
    keys = [str(i) for i in range(sample.size)] if spans is None else list(spans)
    kept = [key for key, keep in zip(keys, finite.tolist(), strict=True) if keep]
    return Exceedance(
        n_above=int(np.sum(sample[finite] > current)),
        n=len(kept),
        effective=effective_size(span_lengths(kept), memory),
        source=source,
    )


def needed_without_exceedance(quantile: float, confidence: float) -> int:
    """Independent readings none of which exceeds a ``quantile`` threshold that show it too
    high at ``confidence``: below, the interval on a rate of 0 still holds ``1 - quantile``.

    >>> needed_without_exceedance(0.99, 0.99)
    528
    """
    return math.ceil(math.log((1 - confidence) / 2) / math.log(quantile))
