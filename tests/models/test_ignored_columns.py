"""``--ignore-columns``: columns that are no sensor, left out of every file ``train`` and
``evaluate`` read, and recorded nowhere."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

from models import ignored_columns
from models.__main__ import main
from models.synthetic import generate_plant, inject_anomalies
from service.scoring.artifact import load_artifact

N_SENSORS = 4
FAST = ["--family", "dpca", "--window", "2", "--smoothing", "none"]


def plant_csv(path: Path, n: int, seed: int, *, anomalies: bool = False) -> Path:
    """A plant run with a second clock (``unix_time``) and a machine state in words."""
    run = generate_plant(n, seed=seed, n_sensors=N_SENSORS)
    values, labels = run.values, np.zeros(n)
    if anomalies:
        injected = inject_anomalies(run.values, seed=seed + 1, kinds=("step",))
        values, labels = injected.values, injected.labels * 1.0
    header = ["timestamp", "unix_time", *run.sensors, "state", "anomaly"]
    start = 1_767_600_000 + 100_000 * seed
    lines = [",".join(header)]
    assert run.timestamps is not None
    for i in range(n):
        cells = [str(run.timestamps[i]), str(start + 10 * i), *(repr(float(v)) for v in values[i])]
        lines.append(",".join([*cells, "STOP" if i % 100 < 10 else "RUN", f"{labels[i]:g}"]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_doctests() -> None:
    assert doctest.testmod(ignored_columns).failed == 0


@pytest.mark.slow
def test_columns_left_out_of_training_and_evaluation_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, cal = plant_csv(tmp_path / "train.csv", 800, 1), plant_csv(tmp_path / "cal.csv", 600, 2)
    train = ["train", "--data", str(data), "--calibration-data", str(cal), *FAST]
    out = ["--out", str(tmp_path / "models"), "--name", "p", "--version", "1"]
    assert main([*train, *out]) == 2
    assert "column state: value 'STOP' is not a number" in capsys.readouterr().err

    assert main([*train, *out, "--ignore-columns", "State", "--ignore-columns", "unix_time"]) == 0
    manifest = load_artifact(tmp_path / "models" / "p" / "1").manifest
    assert manifest.sensors == generate_plant(1, seed=0, n_sensors=N_SENSORS).sensors
    assert "unix_time" not in (tmp_path / "models" / "p" / "1" / "manifest.json").read_text()
    capsys.readouterr()

    # A name no file has is a typo: the column meant would stay in as a sensor.
    typo = ["--out", str(tmp_path / "models"), "--name", "t", "--version", "1"]
    assert main([*train, *typo, "--ignore-columns", "state", "unix_tme"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --ignore-columns: no column 'unix_tme' in {data} or {cal}"
    )
    assert main([*train, *typo, "--ignore-columns", "state", "unix_time,anomaly"]) == 2
    assert "(names are separated by spaces" in capsys.readouterr().err
    assert not (tmp_path / "models" / "t").exists()

    # evaluate leaves them out of its files too, and out of the training and calibration
    # files the manifest records, which the PCA baseline reloads and checks by fingerprint;
    # a numeric column left in (unix_time) is no model sensor and is passed over by name.
    normal = plant_csv(tmp_path / "normal.csv", 600, 3)
    anomalous = plant_csv(tmp_path / "anomalous.csv", 800, 4, anomalies=True)
    evaluate = ["evaluate", "--model", str(tmp_path / "models" / "p" / "1")]
    evaluate += ["--normal", str(normal), "--anomalous", str(anomalous)]
    report = ["--out", str(tmp_path / "report")]
    assert main([*evaluate, *report]) == 2
    assert "column state: value 'STOP' is not a number" in capsys.readouterr().err
    assert main([*evaluate, *report, "--ignore-columns", "state"]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err, err  # the baseline among them
    assert main([*evaluate, *report, "--ignore-columns", "state", "status"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: --ignore-columns: no column 'status' in {normal} or {anomalous}"
    )
    synthetic = ["evaluate", "--model", str(tmp_path / "models" / "p" / "1"), "--synthetic"]
    assert main([*synthetic, *report, "--ignore-columns", "state"]) == 2
    assert "--synthetic reads none" in capsys.readouterr().err
