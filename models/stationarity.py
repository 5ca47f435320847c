"""Which sensors a model reads as first differences rather than levels: those whose levels are
not stationary over a short training run without a calibration run.

A model of levels presumes that the levels it learned are the ones it will meet. On a short
run that holds for a stationary sensor; a sensor that wanders (a thermocouple warming over a
run, a vibration level creeping) leaves the learned range soon after training, and every
reading from then on scores as a fault. Nothing in a short run's threshold sees how far it
will go: the out-of-time errors (models/out_of_time.py) reach half the run at most. The
classical remedy (Box & Jenkins) is to model such a series in first differences, which are
stationary when the series is integrated of order one.

The rule, decided before it was run on data: on a training run without separate calibration
data whose calibration tail is too short for the quantile (the case models/out_of_time.py
handles), each sensor is tested with the KPSS test of level stationarity (Kwiatkowski,
Phillips, Schmidt & Shin 1992) over the whole training run, as the process's memory is
(models/selection.py): the statistic (statsmodels) with a Bartlett long-run variance over
``int(12 (n/100)^(1/4))`` lags (Schwert 1989), against the test's 5% critical value 0.463.
A sensor the test rejects is modelled in first differences; the others stay levels. With a
calibration run, or a tail long enough, the threshold is set on readings beyond the training
run and every sensor stays a level.

A differenced sensor gives up what only its level shows: a sustained offset of that sensor
alone is seen as one jump. Its relations with the other sensors' levels stay modelled.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np

from models.threshold import MIN_TAIL_SAMPLES
from models.train import TrainConfig, time_splits

CRITICAL_5 = 0.463
"""The KPSS level-stationarity test's 5% critical value (Kwiatkowski et al. 1992, table 1)."""


def kpss_lags(n_readings: int) -> int:
    """Schwert's (1989) lag count for the long-run variance, ``int(12 (n/100)^(1/4))``.

    >>> kpss_lags(400)
    16
    """
    return int(12 * (n_readings / 100) ** 0.25)


def kpss_statistic(x: np.ndarray) -> float:
    """The KPSS statistic of level stationarity (statsmodels' ``kpss``, a constant, Schwert's
    lags). 0 for a constant series.

    >>> rng = np.random.default_rng(0)
    >>> kpss_statistic(rng.standard_normal(400)) < CRITICAL_5
    True
    >>> kpss_statistic(np.cumsum(rng.standard_normal(400))) > CRITICAL_5
    True
    """
    from statsmodels.tools.sm_exceptions import InterpolationWarning  # training only
    from statsmodels.tsa.stattools import kpss

    e = np.asarray(x, dtype=np.float64)
    if e.std() == 0:
        return 0.0
    with warnings.catch_warnings():
        # Its p-value is read from a table and clipped beyond it; the rule compares the
        # statistic with the critical value, so that warning says nothing here.
        warnings.simplefilter("ignore", InterpolationWarning)
        result = kpss(
            e, regression="c", nlags=min(kpss_lags(len(e)), len(e) - 1), result_object=True
        )
    return float(result.statistic)


def short_run(n_readings: int, config: TrainConfig, *, separate_calibration: bool) -> bool:
    """Whether ``train`` will set the threshold on out-of-time errors: no calibration run and
    a tail with fewer than ``MIN_TAIL_SAMPLES / (1 - quantile)`` readings."""
    if separate_calibration:
        return False
    start, stop = time_splits(n_readings, config, separate_calibration=False)["calibration"]
    return bool(stop - start < math.ceil(MIN_TAIL_SAMPLES / (1 - config.quantile)))


def non_stationary(values: np.ndarray, sensors: list[str]) -> tuple[str, ...]:
    """The sensors whose levels the KPSS test rejects as stationary at 5%, in sensor order."""
    x = np.asarray(values, dtype=np.float64)
    return tuple(
        name
        for j, name in enumerate(sensors)
        if x[:, j].std() > 0 and kpss_statistic(x[:, j]) > CRITICAL_5
    )


def with_differencing(
    config: TrainConfig, values: np.ndarray, sensors: list[str], *, separate_calibration: bool
) -> TrainConfig:
    """``config`` with ``difference`` set by the rule above (unchanged when the run is not
    short, or when no sensor is rejected)."""
    try:
        short = short_run(len(values), config, separate_calibration=separate_calibration)
    except ValueError:  # too few readings for the splits: train says so
        return config
    if not short:
        return config
    found = non_stationary(values, sensors)
    return replace(config, difference=found) if found else config
