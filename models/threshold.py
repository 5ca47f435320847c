"""The threshold from calibration errors: the quantile, how far the false-alarm rate it
implies can be trusted, and the calibration tails that cannot back one (refused or warned
with the numbers)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from service.calibration.evidence import clopper_pearson

MIN_TAIL_SAMPLES = 10
"""A q-quantile threshold is trusted when at least this many calibration errors lie beyond it,
i.e. with at least ``MIN_TAIL_SAMPLES / (1 - q)`` calibration samples."""


@dataclass(frozen=True)
class ThresholdEstimate:
    """The q-quantile of calibration errors and how far it can be trusted."""

    value: float
    quantile: float
    n_calibration: int
    source: str
    n_exceeding: int
    """Calibration samples strictly above the threshold (the in-sample false alarms)."""
    n_excursions: int
    """Separate runs of consecutive calibration samples above the threshold."""
    false_alarm_rate_ci: tuple[float, float]
    """95% Clopper-Pearson interval on P(normal error > threshold), on the effective counts
    (see :func:`excursions`)."""
    warning: str | None

    @property
    def observed_false_alarm_rate(self) -> float:
        return self.n_exceeding / self.n_calibration


class CalibrationUnscorable(ValueError):
    """The trained model returns non-finite errors on calibration readings."""


class DegenerateCalibration(CalibrationUnscorable):
    """The calibration errors cannot back a threshold (e.g. their upper tail is flat)."""


OUTLIER_RATIO = 3.0
"""A threshold more than this many times the next lower calibration error rests on one
reading, not on the tail of normal operation."""


def estimate_threshold(
    reading_errors: np.ndarray, quantile: float, *, source: str
) -> ThresholdEstimate:
    """The ``quantile`` of per-reading errors (the order statistic at or above it), with a
    Clopper-Pearson interval on the false-alarm rate it implies."""
    n = int(reading_errors.size)
    if n == 0:
        raise ValueError("no calibration errors to set a threshold from")
    if not np.isfinite(reading_errors).all():
        raise CalibrationUnscorable(
            f"{int(np.sum(~np.isfinite(reading_errors)))} of {n} calibration errors are not "
            "finite: the model cannot score these readings, so no threshold can be set"
        )
    needed = math.ceil(MIN_TAIL_SAMPLES / (1 - quantile))
    if n < 2:  # the rule below would call it a repeated value
        raise DegenerateCalibration(
            f"only {n} calibration error to set the {quantile:g} quantile from: too few to set "
            f"a threshold; use at least {needed} calibration readings"
        )
    value = float(np.quantile(reading_errors, quantile, method="higher"))
    median = float(np.median(reading_errors))
    if value <= 0 or value <= median:
        raise DegenerateCalibration(
            f"the {quantile:g} quantile of the {n} calibration errors is {value:g}, no higher "
            f"than their median {median:g}: the errors' upper half is one repeated value, so "
            "any reading scoring above it would alarm; calibrate on readings that vary "
            "(a stuck or constant calibration run cannot set a threshold)"
        )
    above = reading_errors > value
    exceeding = int(above.sum())
    events = excursions(above)
    ci = effective_interval(exceeding, events, n)
    warnings: list[str] = []
    if n < needed:
        warnings.append(
            f"only {n} calibration samples for the {quantile:g} quantile: fewer than "
            f"{MIN_TAIL_SAMPLES} lie beyond it, so the threshold is noisy (false-alarm rate "
            f"95% CI {ci[0]:.2%}-{ci[1]:.2%}); use at least {needed} calibration readings"
        )
    elif events < MIN_TAIL_SAMPLES:
        warnings.append(
            f"the {exceeding} calibration errors above the threshold form only {events} "
            f"separate excursion{'s' if events != 1 else ''} (the errors are autocorrelated, "
            "e.g. smoothed): the threshold rests on that many events, so the false-alarm rate "
            f"on another run is uncertain (95% CI {ci[0]:.2%}-{ci[1]:.2%}); calibrate on a "
            "longer run or smooth less"
        )
    ties = int((reading_errors == value).sum())
    if ties > max(2, n * (1 - quantile)):
        warnings.append(
            f"{ties} of the {n} calibration errors are exactly {value:g}, the threshold: the "
            "tail is one repeated value (a quantised, saturated or stuck signal), so fewer "
            f"than {1 - quantile:.0%} of such readings exceed it and the rate is not what the "
            "quantile promises"
        )
    below = reading_errors[reading_errors < value]
    if below.size and value > OUTLIER_RATIO * float(below.max()):
        warnings.append(
            f"the threshold {value:g} rests on an outlier: it is "
            f"{value / float(below.max()):.1f} times the next calibration error "
            f"{float(below.max()):g}; check the calibration run for a fault or a glitch"
        )
    warning = "; ".join(warnings) or None
    return ThresholdEstimate(
        value=value,
        quantile=quantile,
        n_calibration=n,
        source=source,
        n_exceeding=exceeding,
        n_excursions=events,
        false_alarm_rate_ci=ci,
        warning=warning,
    )


def excursions(above: np.ndarray) -> int:
    """Runs of consecutive ``True`` in a time-ordered series (the runs estimator with run
    length 1: a smoothed score that dips below the threshold for one reading makes two, so
    this errs towards more events, i.e. towards the narrower interval).

    >>> excursions(np.array([False, True, True, False, True]))
    2
    """
    flags = np.asarray(above, dtype=bool)
    if flags.size == 0:
        return 0
    return int(flags[0]) + int(np.sum(flags[1:] & ~flags[:-1]))


def effective_interval(exceeding: int, events: int, n: int) -> tuple[float, float]:
    """95% Clopper-Pearson interval on a rate of ``exceeding`` in ``n`` time-ordered readings
    that fall in ``events`` separate runs: each run is one event, and the readings count as
    ``n x events / exceeding`` (the runs estimate of the extremal index).

    >>> effective_interval(4, 4, 8) == clopper_pearson(4, 8)
    True
    >>> effective_interval(0, 0, 8) == clopper_pearson(0, 8)
    True
    """
    if exceeding == 0:
        return clopper_pearson(0, n)
    return clopper_pearson(events, n * events / exceeding)
