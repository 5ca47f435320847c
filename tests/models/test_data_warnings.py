"""Warnings about readable files a model would learn wrong from: a clock taken as a sensor,
gaps in time, readings written twice."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

from models import data_warnings
from models.__main__ import main
from models.data import write_readings_csv
from models.data_warnings import (
    clock_sensors,
    clock_warning,
    gap_warning,
    repeat_warning,
    time_unit_warning,
)
from models.readings import Readings
from models.synthetic import generate_plant


def test_doctests() -> None:
    assert doctest.testmod(data_warnings).failed == 0


def readings(values: np.ndarray, sensors: list[str], source: str = "plant.csv") -> Readings:
    return Readings(values=values, sensors=sensors, timestamps=None, source=source)


def test_a_column_rising_at_every_reading_is_a_clock() -> None:
    rng = np.random.default_rng(0)
    n = 200
    columns = {
        "epoch": 1.7e9 + 10.0 * np.arange(n),
        "totaliser": np.cumsum(rng.uniform(0.1, 1.0, n)),
        "flow": rng.normal(size=n),
        "trend": np.arange(n) + rng.normal(scale=3.0, size=n),  # rises, but not every time
        "held": np.repeat(np.arange(n // 2), 2).astype(float),  # a counter that pauses
    }
    found = readings(np.column_stack(list(columns.values())), list(columns))
    assert clock_sensors(found) == ["epoch", "totaliser"]
    assert clock_sensors(found.slice(0, 9)) == []  # too few readings to tell
    assert clock_sensors(found.slice(0, 10)) == ["epoch", "totaliser"]
    warning = clock_warning(found)
    assert warning is not None
    assert warning.startswith("plant.csv: sensors epoch, totaliser rise at every one of its 200")
    assert warning.endswith("leave them out with --ignore-columns epoch totaliser")
    assert clock_warning(found.slice(0, 5)) is None
    headerless = readings(np.column_stack([columns["flow"], columns["epoch"]]), ["x01", "x02"])
    assert "sensor x02 rises" in str(clock_warning(headerless))
    assert str(clock_warning(headerless)).endswith("leave it out of the file")


def test_a_column_falling_at_every_reading_is_a_countdown() -> None:
    """Time to the next service, a draining tank: as far outside the training range later."""
    rng = np.random.default_rng(1)
    n = 50
    columns = {
        "hours_to_service": 500.0 - np.arange(n),
        "flow": rng.normal(size=n),
        "draining": 100.0 - np.cumsum(rng.uniform(0.1, 1.0, n)),
        "settling": np.r_[10.0 - np.arange(n - 1), 10.0 - (n - 2)],  # falls, then holds once
    }
    found = readings(np.column_stack(list(columns.values())), list(columns))
    assert clock_sensors(found) == ["hours_to_service", "draining"]
    warning = str(clock_warning(found))
    assert warning.startswith("plant.csv: sensors hours_to_service, draining fall at every one")
    assert "as a clock, a counter or a countdown does" in warning
    one = readings(np.column_stack([columns["flow"], columns["hours_to_service"]]), ["a", "b"])
    assert str(clock_warning(one)).startswith("plant.csv: sensor b falls at every one of its 50")
    both = readings(
        np.column_stack([columns["hours_to_service"], np.arange(n, dtype=float)]), ["down", "up"]
    )
    assert str(clock_warning(both)).startswith("plant.csv: sensors down, up rise or fall at")


@pytest.mark.parametrize(
    ("first", "unit", "factor"),
    [(1.7676e12, "milliseconds", "1,000"), (1.7676e15, "microseconds", "1,000,000"),
     (1.7676e18, "nanoseconds", "1,000,000,000")],
)  # fmt: skip
def test_timestamps_too_large_for_seconds_are_warned_of(
    first: float, unit: str, factor: str
) -> None:
    stamps = first + np.arange(100.0) * float(factor.replace(",", ""))
    warning = str(time_unit_warning("plant.csv", stamps))
    assert warning.startswith(f"plant.csv: numeric timestamps reach {stamps[-1]:.4g}, which")
    assert f"they look like Unix {unit} (1.768e+09 s)" in warning
    assert warning.endswith(
        f"{factor} times off; write seconds (divide by {factor}) or ISO 8601 times"
    )


@pytest.mark.parametrize("digits", [202601050800.0, 20260105080000.0])
def test_dates_written_as_digits_are_not_called_a_unit(digits: float) -> None:
    """YYYYMMDDhhmm divided by 1,000 is a Unix time of 1976: no unit is named for it."""
    warning = str(time_unit_warning("plant.csv", digits + np.arange(10.0)))
    assert "look like Unix" not in warning
    assert "no Unix time in a finer unit either" in warning
    assert warning.endswith(
        "(20260105080000 for 2026-01-05 08:00:00), write them as ISO 8601 times"
    )


def test_seconds_and_times_are_not_warned_of() -> None:
    assert time_unit_warning("a.csv", 1_767_600_000.0 + 60.0 * np.arange(100.0)) is None
    assert time_unit_warning("a.csv", 10.0 * np.arange(100.0)) is None  # since the start
    assert time_unit_warning("a.csv", np.array([9.9e10])) is None  # year 5107: still seconds
    assert time_unit_warning("a.csv", None) is None
    iso = np.datetime64("2026-01-05T08:00:00", "ns") + np.arange(3) * np.timedelta64(60, "s")
    assert time_unit_warning("a.csv", iso) is None


@pytest.mark.slow
def test_train_warns_of_a_clock_and_repeats_it_in_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The walkthrough's timestamp,unix_time,... file trained a model that flagged every
    normal reading of the next run; it still trains, said loudly."""
    run = generate_plant(600, seed=1, n_sensors=3)
    lines = ["timestamp,unix_time," + ",".join(run.sensors)]
    assert run.timestamps is not None
    for i in range(run.n_readings):
        cells = [str(run.timestamps[i]), str(1_767_600_000 + 10 * i)]
        lines.append(",".join(cells + [repr(float(v)) for v in run.values[i]]))
    data = tmp_path / "plant.csv"
    data.write_text("\n".join(lines) + "\n")
    args = ["train", "--data", str(data), "--out", str(tmp_path), "--name", "p"]
    fast = ["--family", "dpca", "--window", "2", "--smoothing", "none"]
    assert main([*args, "--version", "1", *fast]) == 0
    err = capsys.readouterr().err
    said = f"{data}: sensor unix_time rises at every one of its 600 readings, as a clock"
    assert f"warning: {said}" in err
    assert f"WARNING: {said}" in err.split("threshold ")[-1]  # repeated in the summary
    assert "leave it out with --ignore-columns unix_time" in err
    assert main([*args, "--version", "2", *fast, "--ignore-columns", "unix_time"]) == 0
    assert "as a clock" not in capsys.readouterr().err

    # A calibration run with a gap and a stretch written twice: said, and trained as before.
    calibration = generate_plant(400, seed=2, n_sensors=3)
    copied = np.r_[np.arange(200), np.repeat(np.arange(200, 210), 2), np.arange(210, 400)]
    assert calibration.timestamps is not None
    stamps = calibration.timestamps.copy()
    stamps[300:] += np.timedelta64(3, "D")
    write_readings_csv(
        tmp_path / "cal.csv",
        Readings(calibration.values[copied], calibration.sensors, stamps[copied], "cal"),
    )
    cal = ["--calibration-data", str(tmp_path / "cal.csv"), "--ignore-columns", "unix_time"]
    assert main([*args, "--version", "3", *fast, *cal]) == 0
    summary = capsys.readouterr().err.split("threshold ")[-1]
    assert f"WARNING: {tmp_path / 'cal.csv'}: 1 gap in time of more than 10" in summary
    assert "the largest, 3 days from" in summary
    assert f"WARNING: {tmp_path / 'cal.csv'}: 10 readings repeat the one before" in summary


def timed(values: np.ndarray, stamps: np.ndarray) -> Readings:
    return Readings(values=values, sensors=["a", "b"], timestamps=stamps, source="run.csv")


def test_gaps_in_time_are_named_by_their_largest() -> None:
    """A 5-day gap passed without a word, and windows spanned it."""
    rng = np.random.default_rng(0)
    values = rng.normal(size=(300, 2))
    seconds = 10 * np.arange(300, dtype=np.int64)
    seconds[100:] += 5 * 86_400  # the recording stopped for five days
    seconds[200:] += 150  # and a shorter outage of 16 intervals
    start = np.datetime64("2026-01-05T08:00:00", "ns")
    stamps = start + seconds.astype("timedelta64[s]")
    warning = gap_warning(timed(values, stamps))
    assert warning == (
        "run.csv: 2 gaps in time of more than 10 median intervals (10 s); the largest, 5 days "
        "from 2026-01-05T08:16:30 to 2026-01-10T08:16:40 (readings 100 and 101; times in UTC "
        "where the file gives zones), is 43,201 intervals: a window that spans a gap joins "
        "readings from either side as if they were consecutive; if the plant changed "
        "meanwhile, train on one side"
    )
    epoch = gap_warning(timed(values, 1.7e9 + seconds.astype(np.float64)))  # numbers: seconds
    assert epoch is not None and "the largest, 5 days from 1700000990 to 1700433000" in epoch
    steady = timed(values, start + (10 * np.arange(300)).astype("timedelta64[s]"))
    assert gap_warning(steady) is None
    jitter = 10 * np.arange(300) + rng.integers(0, 9, 300)  # late by up to 9 s: no gap
    assert gap_warning(timed(values, np.sort(jitter).astype(np.float64))) is None
    coarse = np.repeat(60 * np.arange(30), 10).astype(np.float64)  # a clock of minutes
    assert gap_warning(timed(values, coarse)) is None
    assert gap_warning(Readings(values, ["a", "b"], None, "run.csv")) is None


def test_readings_written_twice_are_counted() -> None:
    """100 duplicated rows passed without a word."""
    rng = np.random.default_rng(1)
    values = rng.normal(size=(300, 2))
    stamps = 10.0 * np.arange(300)
    copied = np.r_[np.arange(100), np.repeat(np.arange(100, 200), 2), np.arange(200, 300)]
    twice = timed(values[copied], stamps[copied])
    assert repeat_warning(twice) == (
        "run.csv: 100 readings repeat the one before, its timestamp and every value: rows "
        "written twice weigh double in training and in the threshold; drop the copies"
    )
    coarse = stamps[copied].copy()
    coarse[:100:2] = coarse[1:100:2]  # a coarse clock beside them: counted, not a copy
    assert str(repeat_warning(timed(values[copied], coarse))).startswith(
        "run.csv: 100 readings repeat the one before, its timestamp and every value (150 "
        "repeat its timestamp in all)"
    )
    held = timed(values[copied], 10.0 * np.arange(400))  # a held value at its own time
    assert repeat_warning(held) is None
    # Without timestamps a copy cannot be told from a process holding still.
    untimed = Readings(values[copied], ["a", "b"], None, "run.csv")
    assert repeat_warning(untimed) is None
    assert repeat_warning(timed(values, np.repeat(stamps[::2], 2))) is None


@pytest.mark.slow
def test_train_warns_of_millisecond_timestamps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Gap lengths are said in the file's time read as seconds: milliseconds make a gap of
    minutes read as days, so the file's unit is warned of before them."""
    run = generate_plant(600, seed=3, n_sensors=3)
    lines = ["timestamp," + ",".join(run.sensors)]
    for i in range(run.n_readings):
        lines.append(
            ",".join(
                [str(1_767_600_000_000 + 10_000 * i)] + [repr(float(v)) for v in run.values[i]]
            )
        )
    data = tmp_path / "plant.csv"
    data.write_text("\n".join(lines) + "\n")
    args = ["train", "--data", str(data), "--out", str(tmp_path), "--name", "p", "--version", "1"]
    assert main([*args, "--family", "dpca", "--window", "2", "--smoothing", "none"]) == 0
    summary = capsys.readouterr().err.split("threshold ")[-1]
    assert f"WARNING: {data}: numeric timestamps reach 1.768e+12" in summary
    assert "they look like Unix milliseconds (1.768e+09 s)" in summary
