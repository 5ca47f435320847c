"""What a readable file may still hold that a model learns wrong, said as warnings rather than
refusals, since each can be legitimate data: a sensor that is a clock or a counter, a gap in
time, readings written twice. None of them changes what is trained on."""

from __future__ import annotations

import numpy as np

from models.ignored_columns import ignore_hint
from models.readings import Readings, default_sensor_names

MIN_CLOCK_READINGS = 10
"""Readings a sensor must rise (or fall) over, every one, to be called a clock: a noisy sensor
rises, or falls, nine times running by chance twice in 10! (3.6 million) stretches."""


def clock_sensors(readings: Readings) -> list[str]:
    """Sensors whose value rises at every reading of the file, as a clock or a counter's does,
    or falls at every one, as a countdown's (time to the next service, a draining tank's
    remaining volume) does: either way later values lie beyond the training range."""
    if readings.n_readings < MIN_CLOCK_READINGS:
        return []
    steps = np.diff(readings.values, axis=0)
    monotone = np.flatnonzero((steps > 0).all(axis=0) | (steps < 0).all(axis=0))
    return [readings.sensors[i] for i in monotone]


def _moves(readings: Readings, sensors: list[str]) -> str:
    """'rises', 'falls', or 'rise or fall' for several of both, at every reading."""
    columns = [readings.sensors.index(name) for name in sensors]
    rising = [bool(readings.values[1, i] > readings.values[0, i]) for i in columns]
    one = len(sensors) == 1
    if all(rising):
        return "rises" if one else "rise"
    if not any(rising):
        return "falls" if one else "fall"
    return "rise or fall"


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
        f"{readings.source}: {which} {_moves(readings, clocks)} at every one of its "
        f"{readings.n_readings} readings, as a clock, a counter or a countdown does: a model "
        f"trained on {'it' if one else 'them'} flags every later reading, since later values "
        "lie beyond the range it was trained on; leave "
        + ("it" if one else "them")
        + (" out of the file" if headerless else f" out with {ignore_hint(clocks)}")
    )


TOO_LARGE_FOR_SECONDS = 1e11
"""1e11 seconds after 1970 is the year 5138, and no run lasts 3,000 years: numbers from here
on, read as seconds, are no times."""
TIME_UNITS = (("milliseconds", 1e3), ("microseconds", 1e6), ("nanoseconds", 1e9))
UNIX_ERA = (9.46e8, 4.1e9)
"""Unix seconds from 2000 to 2099: a finer unit is named only where the numbers divided by
it land here, so that a date written as digits (202601050800, 20260105080000) is not
called milliseconds."""


def time_unit_warning(source: str, timestamps: np.ndarray | None) -> str | None:
    """Numeric timestamps too large to be seconds, the unit numbers are read in: Unix time
    in milliseconds (or finer) would make every duration derived from them (false alerts per
    day, gap lengths) a thousand times off, without a word. Not converted: guessing a unit
    is what the refusal of ``01/02/2024`` avoids; the user writes seconds or ISO 8601.

    >>> time_unit_warning("a.csv", np.array([1.7e9, 1.7e9 + 10])) is None
    True
    >>> print(time_unit_warning("a.csv", np.array([1.7e12, 1.7e12 + 1e4])))  # doctest: +ELLIPSIS
    a.csv: numeric timestamps reach 1.7e+12, which read as seconds ... Unix milliseconds ...
    >>> print(time_unit_warning("a.csv", np.array([20260105080000.0])))  # doctest: +ELLIPSIS
    a.csv: ... no Unix time in a finer unit either: ...(20260105080000 for 2026-01-05 08:00:00)...
    """
    if timestamps is None or timestamps.dtype.kind != "f" or not len(timestamps):
        return None
    largest = float(np.abs(timestamps).max())
    if largest < TOO_LARGE_FOR_SECONDS:
        return None
    said = (
        f"{source}: numeric timestamps reach {largest:.4g}, which read as seconds (how numbers "
        "are read) is past the year 5000"
    )
    low, high = UNIX_ERA
    for unit, per_second in TIME_UNITS:
        if low <= float(np.abs(timestamps).min()) / per_second and largest / per_second <= high:
            return (
                f"{said}: they look like Unix {unit} ({largest / per_second:.4g} s), which would "
                "put every duration taken from them (false alerts per day, gap lengths) "
                f"{per_second:,.0f} times off; write seconds (divide by {per_second:,.0f}) or "
                "ISO 8601 times"
            )
    return (
        f"{said}, and no Unix time in a finer unit either: every duration taken from them "
        "(false alerts per day, gap lengths) is meaningless; if they are dates written as "
        "digits (20260105080000 for 2026-01-05 08:00:00), write them as ISO 8601 times"
    )


GAP_INTERVALS = 10
"""A step between readings longer than this many median intervals is a gap: readings were
lost or the recording stopped, where a late reading or two is the sampling's jitter."""


def _seconds(timestamps: np.ndarray) -> np.ndarray:
    """Timestamps as float seconds: numbers are seconds already (docs/training.md)."""
    if np.issubdtype(timestamps.dtype, np.datetime64):
        return timestamps.astype("datetime64[ns]").astype(np.int64) / 1e9
    return timestamps.astype(np.float64)


def _duration(seconds: float) -> str:
    """
    >>> _duration(10), _duration(90 * 60), _duration(4.5 * 86_400)
    ('10 s', '90 min', '4.5 days')
    """
    for unit, size, beyond in (("days", 86_400, 2 * 86_400), ("h", 3_600, 2 * 3_600)):
        if seconds >= beyond:
            return f"{seconds / size:.3g} {unit}"
    return f"{seconds / 60:.3g} min" if seconds >= 120 else f"{seconds:.3g} s"


def _stamp(timestamps: np.ndarray, i: int) -> str:
    if np.issubdtype(timestamps.dtype, np.datetime64):
        return str(np.datetime_as_string(timestamps[i], unit="s"))
    return f"{float(timestamps[i]):.15g}"


def gap_warning(readings: Readings) -> str | None:
    """The gaps in a file's timestamps, the largest named: windows that span one treat the
    readings on either side as consecutive."""
    if readings.timestamps is None or readings.n_readings < 3:
        return None
    steps = np.diff(_seconds(readings.timestamps))
    moving = steps[steps > 0]  # a coarse clock repeats times; its interval is the steps taken
    if not moving.size:
        return None
    median = float(np.median(moving))
    gaps = steps > GAP_INTERVALS * median
    if not gaps.any():
        return None
    i = int(np.argmax(steps))
    count = int(gaps.sum())
    return (
        f"{readings.source}: {count} gap{'s' if count != 1 else ''} in time of more than "
        f"{GAP_INTERVALS} median intervals ({_duration(median)}); the largest, "
        f"{_duration(float(steps[i]))} from {_stamp(readings.timestamps, i)} to "
        f"{_stamp(readings.timestamps, i + 1)} (readings {i + 1} and {i + 2}; times in UTC "
        f"where the file gives zones), is {steps[i] / median:,.0f} intervals: a window that "
        "spans a gap joins readings from either side as if they were consecutive; if the "
        "plant changed meanwhile, train on one side"
    )


def repeat_warning(readings: Readings) -> str | None:
    """Readings identical to the one before, timestamp and every value: a row exported
    twice, which weighs double in training and in the threshold. A timestamp repeated with
    other values is a clock coarser than the sampling, and is counted but not warned of.
    Without timestamps nothing tells a copy from a process holding still (quantised or idle
    sensors), so nothing is said."""
    if readings.n_readings < 2 or readings.timestamps is None:
        return None
    same = (np.diff(readings.values, axis=0) == 0).all(axis=1)
    same_time = np.diff(_seconds(readings.timestamps)) == 0
    copies = int((same & same_time).sum())
    if not copies:
        return None
    said = (
        f"{readings.source}: {copies} reading{'s' if copies != 1 else ''} repeat"
        f"{'' if copies != 1 else 's'} the one before, its timestamp and every value"
    )
    if (times := int(same_time.sum())) > copies:
        said += f" ({times} repeat its timestamp in all)"
    return (
        said + ": rows written twice weigh double in training and in the threshold; drop the copies"
    )
