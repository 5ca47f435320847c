"""What a readable file may still hold that a model learns wrong, said as warnings rather than
refusals, since each can be legitimate data: a sensor that is a clock or a counter."""

from __future__ import annotations

import numpy as np

from models.ignored_columns import ignore_hint
from models.readings import Readings, default_sensor_names

MIN_CLOCK_READINGS = 10
"""Readings a sensor must rise over, every one, to be called a clock: a noisy sensor rises
nine times running by chance once in 10! (3.6 million) stretches."""


def clock_sensors(readings: Readings) -> list[str]:
    """Sensors whose value rises at every reading of the file, as a clock or a counter's does."""
    if readings.n_readings < MIN_CLOCK_READINGS:
        return []
    rising = np.flatnonzero((np.diff(readings.values, axis=0) > 0).all(axis=0))
    return [readings.sensors[i] for i in rising]


def clock_warning(readings: Readings) -> str | None:
    """Loud, since a model trained on a clock flags every later reading; not a refusal, since
    a totaliser (a flow counted up) is a real measurement, only an unsuitable one."""
    clocks = clock_sensors(readings)
    if not clocks:
        return None
    one = len(clocks) == 1
    which = f"sensor {clocks[0]}" if one else f"sensors {', '.join(clocks)}"
    headerless = readings.sensors == default_sensor_names(readings.n_sensors)
    return (
        f"{readings.source}: {which} {'rises' if one else 'rise'} at every one of its "
        f"{readings.n_readings} readings, as a clock or a counter does: a model trained on "
        f"{'it' if one else 'them'} flags every later reading, since later values lie beyond "
        "the range it was trained on; leave "
        + ("it" if one else "them")
        + (" out of the file" if headerless else f" out with {ignore_hint(clocks)}")
    )
