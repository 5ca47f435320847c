"""``train``'s calibration file: lined up with the training file's sensors by name."""

from __future__ import annotations

import doctest
import json
from pathlib import Path

import pytest

from models import train_command
from models.__main__ import main
from models.data import write_readings_csv
from models.evaluate_data import baseline_data
from models.readings import Readings
from models.synthetic import generate_plant
from service.scoring.artifact import load_artifact

FAST = ["--family", "dpca", "--window", "2", "--smoothing", "none"]


def test_doctests() -> None:
    assert doctest.testmod(train_command).failed == 0


def columns(readings: Readings, order: list[int]) -> Readings:
    return Readings(
        values=readings.values[:, order],
        sensors=[readings.sensors[i] for i in order],
        timestamps=readings.timestamps,
        source=readings.source,
    )


@pytest.mark.slow
def test_a_calibration_file_with_its_columns_in_another_order_is_lined_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Refused as "sensor 1 is 's19', the training data's is 's00'", while evaluate lines
    files up by name."""
    write_readings_csv(tmp_path / "train.csv", generate_plant(600, seed=1, n_sensors=4))
    calibration = generate_plant(400, seed=2, n_sensors=4)
    write_readings_csv(tmp_path / "cal.csv", calibration)
    write_readings_csv(tmp_path / "reversed.csv", columns(calibration, [3, 2, 1, 0]))
    manifests = []
    for version, cal in (("1", "cal.csv"), ("2", "reversed.csv")):
        args = ["train", "--data", str(tmp_path / "train.csv")]
        args += ["--calibration-data", str(tmp_path / cal), "--out", str(tmp_path / "m")]
        assert main([*args, "--name", "p", "--version", version, *FAST]) == 0
        manifest = json.loads((tmp_path / "m" / "p" / version / "manifest.json").read_text())
        manifests.append(manifest)
    assert manifests[1]["sensors"] == manifests[0]["sensors"] == calibration.sensors
    assert manifests[1]["threshold"]["value"] == manifests[0]["threshold"]["value"]
    recorded = [m["training"]["data"]["calibration"]["sha256"] for m in manifests]
    assert recorded[1] == recorded[0]  # the readings, in the model's order
    # which evaluate's PCA baseline finds again, reloading the file and lining it up by name
    baseline = baseline_data(load_artifact(tmp_path / "m" / "p" / "2").manifest)
    assert baseline.calibration.shape == (400, 4)
    capsys.readouterr()

    # Another set of columns is still refused, naming what is missing and what is extra.
    other = columns(calibration, [0, 1, 2])
    other = Readings(other.values, [*other.sensors[:2], "spare"], None, "other")
    write_readings_csv(tmp_path / "other.csv", other)
    args = ["train", "--data", str(tmp_path / "train.csv"), "--out", str(tmp_path / "m")]
    args += ["--calibration-data", str(tmp_path / "other.csv"), "--name", "x", *FAST]
    assert main(args) == 2
    missing = ", ".join(repr(name) for name in calibration.sensors[2:])
    assert capsys.readouterr().err.strip() == (
        f"error: {tmp_path / 'other.csv'}: 3 sensors, the training data's 4 (missing: "
        f"{missing}; extra: 'spare') (the calibration data needs the training data's sensors, "
        "by name, in any order)"
    )
