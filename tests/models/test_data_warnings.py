"""Warnings about readable files a model would learn wrong from: a clock taken as a sensor."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.__main__ import main
from models.data_warnings import clock_sensors, clock_warning
from models.readings import Readings
from models.synthetic import generate_plant


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
