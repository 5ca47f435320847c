"""``python -m models generate`` and ``train`` end to end, in-process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from models.__main__ import COMMANDS, build_parser, main
from models.data import load_readings
from models.selection_rule import CandidateScore
from service.scoring.artifact import load_artifact, sha256_array

SENSORS = 6


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("data")
    for name, seed, extra in (("train", 1, []), ("cal", 2, []), ("test", 3, ["--anomalies"])):
        status = main(
            ["generate", "--out", str(folder / f"{name}.csv"), "--readings", "1500"]
            + ["--seed", str(seed), "--sensors", str(SENSORS), *extra]
        )
        assert status == 0
    return folder


def tiny(*args: str) -> list[str]:
    return ["--epochs", "2", "--patience", "1", "--batch-size", "128", *args]


def test_generate_writes_labelled_readings(data_dir: Path) -> None:
    normal = load_readings(data_dir / "train.csv")
    assert normal.values.shape == (1500, SENSORS)
    assert normal.labels["anomaly"].sum() == 0
    test = load_readings(data_dir / "test.csv")
    labelled = test.labels["anomaly"] > 0
    assert labelled.any()
    assert set(test.labels["anomaly_kind"][labelled]) <= {
        "spike", "step", "drift", "stuck", "correlation"
    }  # fmt: skip
    assert set(test.labels["anomaly_sensor"][labelled]) <= set(test.sensors)
    assert (test.labels["anomaly_kind"][~labelled] == "").all()


def test_train_with_calibration_file(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--data", str(data_dir / "train.csv")]
    args += ["--calibration-data", str(data_dir / "cal.csv"), "--out", str(tmp_path)]
    assert main([*args, "--name", "plant", "--version", "1", *tiny()]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/2  train loss" in err and "val loss" in err
    assert "quantile of 1500 calibration errors" in err
    assert "model 6 -> 4 -> 2 -> 4 -> 6 (elu, window 1)" in err
    assert "--calibration-data with normal" not in err
    artifact = load_artifact(tmp_path / "plant" / "1")
    manifest = artifact.manifest
    assert manifest.threshold.source.endswith("cal.csv")
    assert manifest.threshold.n_calibration == 1500
    training = load_readings(data_dir / "train.csv").values
    assert manifest.training_data_sha256 == sha256_array(training)
    assert manifest.training["data"]["calibration"]["shape"] == [1500, SENSORS]
    assert manifest.training["epochs"] == 2
    # What a glitch does to the alert, checked on the calibration run and recorded.
    spike = manifest.metrics["lone_spike"]
    assert spike["trials"] > 0 and spike["size_sd"] == 8.0
    assert spike["readings"] == "the calibration run" and spike["verdict"] in ("ok", "alerts")
    assert f"lone spike (on the calibration run): {'ok' if spike['ok'] else 'WARNING'}: " in err
    assert f"an alert in {spike['alerted']} of {spike['trials']} trials" in err
    # Every file written is named, the manifest too.
    wrote = next(line for line in err.splitlines() if line.startswith("wrote "))
    listed = wrote.split(": ", 1)[1].split(", ")
    assert sorted(listed) == sorted(p.name for p in (tmp_path / "plant" / "1").iterdir())
    assert "training on 1500 readings x 6 sensors from" in err

    # The same folder is not overwritten by accident.
    assert main([*args, "--name", "plant", "--version", "1", *tiny()]) == 2
    assert "already holds a model" in capsys.readouterr().err
    assert main([*args, "--name", "plant", "--version", "1", "--force", *tiny()]) == 0


def test_train_without_calibration_file_recommends_one(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--data", str(data_dir / "train.csv"), "--out", str(tmp_path)]
    # A 0.9 quantile needs 100 calibration readings: the 225 of the tail set it.
    tail = [*args, "--name", "p", "--version", "1", "--window", "2", "--quantile", "0.9"]
    assert main([*tail, *tiny()]) == 0
    err = capsys.readouterr().err
    assert "WARNING: the threshold was set on the tail of the training run" in err
    assert "--calibration-data" in err
    manifest = load_artifact(tmp_path / "p" / "1").manifest
    assert manifest.window == 2
    assert manifest.threshold.source == "tail of the training data"
    assert manifest.threshold.n_calibration == 224
    assert manifest.metrics["out_of_time"]["applied"] is False

    # 225 cannot back a 0.99 quantile: the threshold comes from out-of-time errors of the
    # whole run (two halves of 750, less a window's context each).
    assert main([*args, "--name", "p", "--version", "2", "--window", "2", *tiny()]) == 0
    err = capsys.readouterr().err
    assert "WARNING: the calibration tail is too short for the quantile" in err
    assert "--calibration-data" in err
    manifest = load_artifact(tmp_path / "p" / "2").manifest
    assert manifest.threshold.source.startswith("out-of-time errors of the training run")
    assert manifest.threshold.n_calibration == 1498
    assert manifest.metrics["out_of_time"]["applied"] is True


def test_train_refuses_bad_data(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    lines = (data_dir / "train.csv").read_text().splitlines()
    cells = lines[10].split(",")
    cells[3] = "nan"
    lines[10] = ",".join(cells)
    bad.write_text("\n".join(lines) + "\n")
    header = lines[0].split(",")
    args = ["train", "--data", str(bad), "--out", str(tmp_path), "--name", "x", "--version", "1"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"{bad}, line 11, column {header[3]}: missing value ('nan')" in err
    assert not (tmp_path / "x").exists()

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes("temp°C,b\n1,2\n".encode("latin-1"))
    args = ["train", "--data", str(latin1), "--out", str(tmp_path), "--name", "x", "--version", "1"]
    assert main(args) == 2
    assert f"error: {latin1}, line 1: not UTF-8 text" in capsys.readouterr().err

    other = tmp_path / "other.npy"
    np.save(other, np.zeros((100, SENSORS)))
    args = ["train", "--data", str(data_dir / "train.csv"), "--calibration-data", str(other)]
    assert main([*args, "--out", str(tmp_path), "--name", "x", "--version", "1"]) == 2
    err = capsys.readouterr().err
    assert "by name, in any order" in err and "extra: 'x01', 'x02'" in err
    assert "a file without a header row has no names to match" in err
    # One list shorter: what it lacks is said, not elided.
    fewer = tmp_path / "fewer.csv"
    clean = (data_dir / "train.csv").read_text().splitlines()[:200]
    last = SENSORS  # the columns are a timestamp, the sensors, then the labels
    kept = [",".join(cells[:last] + cells[last + 1 :]) for cells in (x.split(",") for x in clean)]
    fewer.write_text("\n".join(kept) + "\n")
    args = ["train", "--data", str(data_dir / "train.csv"), "--calibration-data", str(fewer)]
    assert main([*args, "--out", str(tmp_path), "--name", "x", "--version", "1"]) == 2
    err = capsys.readouterr().err
    assert (
        f"{SENSORS - 1} sensors, the training data's {SENSORS} (missing: {header[last]!r})" in err
    )

    args = ["train", "--data", str(data_dir / "train.csv"), "--out", str(tmp_path)]
    assert main([*args, "--name", "x", "--version", "1", "--quantile", "1.5"]) == 2
    assert "quantile must be in (0, 1)" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["plant/", "../../escaped", "my plant", "", ".hidden"])
def test_train_refuses_a_bad_name_before_training(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    """These trained in full, then failed at export: "plant/" replaced plant/1 with --force
    and broke it, "../../escaped" wrote outside --out."""
    out = tmp_path / "models"
    args = ["train", "--data", str(data_dir / "train.csv"), "--out", str(out)]
    assert main([*args, "--name", name, "--version", "1", "--force", *tiny()]) == 2
    err = capsys.readouterr().err
    assert "--name" in err and "names a folder" in err and "epoch" not in err
    assert not tmp_path.joinpath("escaped").exists() and not out.exists()
    assert main([*args, "--name", "plant", "--version", "1/2", *tiny()]) == 2
    assert "--version" in capsys.readouterr().err


def test_train_keeps_files_that_are_not_a_model_unless_forced(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "p" / "1"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("mine")
    args = ["train", "--data", str(data_dir / "train.csv"), "--out", str(tmp_path)]
    assert main([*args, "--name", "p", "--version", "1", *tiny()]) == 2
    assert "holds files but no model (use --force" in capsys.readouterr().err
    assert (folder / "notes.txt").read_text() == "mine"
    assert main([*args, "--name", "p", "--version", "1", "--force", *tiny()]) == 0
    assert not (folder / "notes.txt").exists() and load_artifact(folder).manifest.version == "1"


def test_train_names_the_options_a_refused_setting_comes_from(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--data", str(data_dir / "train.csv"), "--out", str(tmp_path / "m")]
    assert main([*args, "--family", "cva", "--plane-variance", "0.9", "--batch-size", "0"]) == 2
    err = capsys.readouterr().err
    assert "--plane-variance needs --family autoencoder" in err
    assert "--batch-size must be at least 1" in err
    assert "plane_variance" not in err and "batch_size" not in err
    # What the user typed, and the text of a smoothing's own refusal, stay as they are.
    assert main([*args, "--smoothing", "window:3"]) == 2
    assert "--smoothing 'window:3' must be" in capsys.readouterr().err
    for bound in ("mean:0", "ewma:2"):  # the schema's bounds: one line, not pydantic's
        assert main([*args, "--smoothing", bound]) == 2
        err = capsys.readouterr().err
        assert f"--smoothing {bound!r} must be none, mean:N, median:N (N >= 1)" in err
        assert len(err.splitlines()) == 1 and "pydantic" not in err and "--window" not in err


@pytest.mark.parametrize(
    ("options", "said"),
    [
        (
            ["--family", "cva", "--epochs", "5"],
            "--epochs applies to autoencoder, conv, vae only, not to cva (fitted in closed form)",
        ),
        (
            ["--families", "autoencoder,conv", "--kl-warmup", "3"],
            "--kl-warmup applies to vae only, not to autoencoder, conv",
        ),
        (
            ["--family", "dpca", "--window", "2", "--latent", "2", "--lr", "0.01"],
            "--latent applies to autoencoder, conv, vae only, not to dpca (fitted in closed "
            "form); --lr applies",
        ),
    ],
)
def test_train_refuses_options_that_no_family_it_trains_uses(
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    said: str,
) -> None:
    """They would change nothing: a user who gives one means something that is not trained."""
    args = ["train", "--data", str(data_dir / "train.csv"), "--out", str(tmp_path / "m")]
    assert main([*args, *options]) == 2
    assert f"error: {said}" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_the_glitch_guard_on_a_one_reading_model_says_it_does_nothing(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--data", str(data_dir / "train.csv"), "--out", str(tmp_path / "m")]
    args += ["--name", "p", "--version", "1", "--family", "dpca", "--window", "1"]
    assert main([*args, "--glitch-guard"]) == 0
    assert "glitch guard: one reading per input, so nothing to despike" in capsys.readouterr().err


def test_train_refuses_an_out_that_is_a_file(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "models"
    out.write_text("not a folder")
    args = ["train", "--data", str(data_dir / "train.csv"), "--out", str(out)]
    assert main([*args, "--name", "p", "--version", "1", *tiny()]) == 2
    err = capsys.readouterr().err
    assert f"{out} exists and is not a folder" in err and "epoch" not in err


def test_train_refuses_values_float32_cannot_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """They trained, then the scaler became infinite in float32 and export crashed on a NaN
    threshold, leaving a partial artifact."""
    values = np.random.default_rng(0).normal(size=(400, 3))
    values[123, 1] = 1.5e39
    data = tmp_path / "huge.npy"
    np.save(data, values)
    args = ["train", "--data", str(data), "--out", str(tmp_path / "m"), "--name", "p"]
    assert main([*args, "--version", "1", *tiny()]) == 2
    err = capsys.readouterr().err
    assert f"error: {data}: reading 123, sensor x02: 1.5e+39 is beyond the float32" in err
    assert not (tmp_path / "m").exists()


def test_train_names_the_calibration_file_the_model_cannot_score(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """1e25 fits float32 but its squared error does not: that is the calibration file's
    problem, and the message had named --data."""
    rng = np.random.default_rng(0)
    np.save(tmp_path / "train.npy", rng.normal(size=(300, 3)))
    calibration = rng.normal(size=(200, 3))
    calibration[5, 0] = 1e25
    np.save(tmp_path / "cal.npy", calibration)
    args = ["train", "--data", str(tmp_path / "train.npy")]
    args += ["--calibration-data", str(tmp_path / "cal.npy"), "--out", str(tmp_path / "m")]
    assert main([*args, "--name", "p", "--version", "1", *tiny()]) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'cal.npy'}: 1 of 200 calibration errors are not finite" in err


def test_train_refuses_a_sensor_constant_in_training_that_moves_in_calibration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A sensor stuck through the training run but live in the calibration run set the
    threshold by its moves (thousands of times the usual), and the model missed every
    fault with no warning naming it."""
    rng = np.random.default_rng(0)
    train = rng.normal(size=(300, 3))
    train[:, 1] = 42.0
    calibration = rng.normal(size=(200, 3))
    calibration[:, 1] = 42.0 + rng.normal(size=200)
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "cal.npy", calibration)
    args = ["train", "--data", str(tmp_path / "train.npy")]
    args += ["--calibration-data", str(tmp_path / "cal.npy"), "--out", str(tmp_path / "m")]
    assert main([*args, "--name", "p", "--version", "1", *tiny()]) == 2
    err = capsys.readouterr().err
    assert "error: sensor(s) x02 (constant 42 in training; 200 of 200 calibration" in err
    assert f"calibration readings ({tmp_path / 'cal.npy'})" in err
    assert "leave the sensor out" in err
    assert not (tmp_path / "m").exists()
    # Without a calibration file, its tail is the training file's: named.
    tail = np.r_[train, calibration[:60]]
    np.save(tmp_path / "both.npy", tail)
    alone = ["train", "--data", str(tmp_path / "both.npy"), "--out", str(tmp_path / "m")]
    assert main([*alone, "--name", "p", "--version", "1", *tiny()]) == 2
    err = capsys.readouterr().err
    assert f"error: {tmp_path / 'both.npy'}: sensor(s) x02 (constant 42 in training" in err
    # Constant in both, up to float32's resolution: trained, the sensor reported as constant.
    calibration[:, 1] = float(np.float32(42.1))
    train[:, 1] = 42.1
    np.save(tmp_path / "train.npy", train)
    np.save(tmp_path / "cal.npy", calibration)
    assert main([*args, "--name", "p", "--version", "1", *tiny()]) == 0
    assert "constant sensors (scale 1, they only flag a change): x02" in capsys.readouterr().err


def test_train_warns_of_sensors_float32_cannot_resolve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Around 1e7 float32 steps by 1: a sensor with std 0.1 there reaches the model as a few
    values, while training (in float64) shows nothing wrong."""
    values = np.random.default_rng(0).normal(size=(600, 3))
    values[:, 0] = 1e7 + 0.1 * values[:, 0]
    data = tmp_path / "offset.npy"
    np.save(data, values)
    args = ["train", "--data", str(data), "--out", str(tmp_path / "m"), "--name", "p"]
    assert main([*args, "--version", "1", *tiny()]) == 0
    err = capsys.readouterr().err
    assert "WARNING: sensor x01: float32, the model's input type, steps by 1 around 1e+07" in err
    assert "sensor x02" not in err and "sensor x03" not in err
    warnings = load_artifact(tmp_path / "m" / "p" / "1").manifest.metrics["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("sensor x01:")


def test_train_warns_when_calibration_data_is_the_training_data(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    train_csv = str(data_dir / "train.csv")
    args = ["train", "--data", train_csv, "--calibration-data", train_csv]
    assert main([*args, "--out", str(tmp_path), "--name", "p", "--version", "1", *tiny()]) == 0
    assert "--calibration-data holds the same readings as --data" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--lr", "1e6", "--epochs", "5"], "training diverged"),
        (["--lr", "inf"], "--lr must be positive and finite"),
        (["--noise-std", "inf"], "--noise-std must be non-negative and finite"),
    ],
)
def test_train_refuses_a_run_that_cannot_learn(
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    options: list[str],
    message: str,
) -> None:
    """A diverged run exported its untrained initial weights with exit status 0."""
    args = ["train", "--data", str(data_dir / "train.csv"), "--out", str(tmp_path)]
    assert main([*args, "--name", "p", "--version", "1", "--patience", "2", *options]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_train_hints_at_transpose_for_few_readings_of_many_sensors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As TEP's d00.dat (52 sensors x 500 readings) read without --transpose: it trains, so
    only the hint tells that it trained on 52 readings of 500 sensors."""
    wide = tmp_path / "d00.dat"
    np.savetxt(wide, np.random.default_rng(0).normal(size=(12, 20)))
    args = ["train", "--data", str(wide), "--out", str(tmp_path), "--name", "w", "--version", "1"]
    assert main([*args, *tiny()]) == 0
    err = capsys.readouterr().err
    hint = f"{wide} gives 12 readings x 20 sensors, fewer readings than sensors"
    assert f"warning: {hint}: if it is stored sensors x readings, pass --transpose" in err
    assert f"WARNING: {hint}" in err.split("stopped after")[1]  # repeated in the summary
    assert main([*args, "--version", "2", "--transpose", *tiny()]) == 0
    assert "fewer readings than sensors" not in capsys.readouterr().err
    tall = tmp_path / "tall.txt"
    np.savetxt(tall, np.loadtxt(wide).T)
    args = ["train", "--data", str(tall), "--transpose", "--out", str(tmp_path), "--name", "t"]
    assert main([*args, "--version", "1", *tiny()]) == 0
    assert "if it is stored readings x sensors, drop --transpose" in capsys.readouterr().err

    # Stored the same way but read as is, the calibration file is hinted at before the
    # sensor mismatch it causes is refused.
    cal = tmp_path / "cal.npy"
    np.save(cal, np.zeros((12, 20)))
    args = ["train", "--data", str(wide), "--transpose", "--calibration-data", str(cal)]
    assert main([*args, "--out", str(tmp_path), "--name", "c", "--version", "1"]) == 2
    err = capsys.readouterr().err
    assert f"warning: {cal} gives 12 readings x 20 sensors" in err
    assert "pass --calibration-transpose" in err and "by name, in any order" in err


def test_train_names_the_file_too_short_to_train_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    files = {}
    for name, n in (("short", 3), ("four", 4), ("long", 60)):
        files[name] = tmp_path / f"{name}.npy"
        np.save(files[name], rng.normal(size=(n, 2)))
    out = ["--out", str(tmp_path), "--name", "x", "--version", "1", *tiny()]

    assert main(["train", "--data", str(files["short"]), "--window", "4", *out]) == 2
    assert f"error: {files['short']}: the train split has 3 readings" in capsys.readouterr().err

    args = ["train", "--data", str(files["long"]), "--calibration-data", str(files["short"])]
    assert main([*args, "--window", "4", *out]) == 2
    err = capsys.readouterr().err
    assert f"error: {files['short']}: 3 readings are fewer than one window of 4" in err
    assert "epoch 1/" not in err  # refused before training, not after

    args = ["train", "--data", str(files["four"]), "--calibration-data", str(files["long"])]
    args += ["--window", "2", "--val-fraction", "0.5", "--plane-variance", "0.9"]
    assert main([*args, *out]) == 2
    assert f"error: {files['four']}: a plane needs" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()

    # Selection (the default) on a run whose calibration tail cannot hold the injected
    # faults: said so, with what to do, not numpy's broadcast error; and a tail of one
    # reading is too few, not "one repeated value".
    selected = ["--out", str(tmp_path), "--name", "y", "--version", "1"]  # no network option
    few = tmp_path / "few.npy"
    np.save(few, rng.normal(size=(12, 4)))
    tail = f"error: {few} (its calibration tail): "
    for forced, said in (
        ([], "2 calibration readings are too few to inject faults into (at least 9"),
        (["--family", "dpca", "--window", "2"], "only 1 calibration error to set the 0.99"),
    ):
        assert main(["train", "--data", str(few), *selected, *forced]) == 2
        err = capsys.readouterr().err.strip().splitlines()[-1]
        assert err.startswith(f"error: {few}") and said in err, err
        assert err.startswith(tail) or forced
    # A calibration file: named as the one too short; 9 readings hold every fault.
    long = rng.normal(size=(300, 4))
    np.save(tmp_path / "long.npy", long)
    for n, status in ((8, 2), (9, 0)):
        short = tmp_path / f"cal{n}.npy"
        np.save(short, long[:n] + 0.1)
        args = ["train", "--data", str(tmp_path / "long.npy"), "--calibration-data", str(short)]
        out_n = ["--out", str(tmp_path), "--name", f"c{n}", "--version", "1"]
        assert main([*args, *out_n, "--families", "dpca,cva"]) == status
        err = capsys.readouterr().err
        if status:
            assert f"error: {short}: 8 calibration readings are too few to inject" in err


def test_commands_are_registered() -> None:
    parser = build_parser()
    args = parser.parse_args(["generate", "--out", "x.csv", "--readings", "3", "--seed", "1"])
    assert args.command == "generate" and callable(args.run)
    with pytest.raises(SystemExit):
        parser.parse_args(["no-such-command"])


def test_train_names_and_numbers_the_model_when_not_told(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No --name or --version: the data file names the model and versions count up."""
    data = tmp_path / "my plant.csv"
    data.write_bytes((data_dir / "train.csv").read_bytes())
    args = ["train", "--data", str(data), "--out", str(tmp_path / "m"), *tiny()]
    assert main(args) == 0
    assert main(args) == 0
    assert sorted(p.name for p in (tmp_path / "m" / "my-plant").iterdir()) == ["1", "2"]
    assert load_artifact(tmp_path / "m" / "my-plant" / "2").manifest.name == "my-plant"
    capsys.readouterr()


def test_train_help_shows_no_none_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "(default: None)" not in out
    assert "(default: auto)" in out  # real defaults are still shown


def test_models_help_works_without_torch() -> None:
    """The list of commands imports none of them: `python -m models --help` answers on a
    machine where torch is not installed yet."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from models.__main__ import main\n"
        "main(['--help'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    for name in COMMANDS:
        assert name in done.stdout


def test_the_command_list_says_what_each_command_says_of_itself() -> None:
    full = build_parser().format_help()
    listed = build_parser("").format_help()
    for _, summary in COMMANDS.values():
        words = " ".join(summary.split())
        assert words in " ".join(full.split()) and words in " ".join(listed.split())


def test_train_keeps_the_warning_that_the_model_cannot_tell_faults(
    data_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the rule's warning says is tested with the rule; here, that it judges the model
    shipped and reaches the user and the manifest, for a choice among smoothings as for one
    among candidates."""
    import models.train_command

    seen: list[tuple[str, bool]] = []

    def warn(chosen: CandidateScore, *, calibration_given: bool) -> str:
        seen.append((chosen.label, calibration_given))
        return f"blind: {chosen.label}"

    def split(chosen: CandidateScore, *, calibration_given: bool) -> str:
        return f"split: {chosen.label}"

    monkeypatch.setattr(models.train_command, "blind_warning", warn)
    monkeypatch.setattr(models.train_command, "split_warning", split)
    args = ["train", "--data", str(data_dir / "train.csv"), "--out", str(tmp_path)]
    args += ["--calibration-data", str(data_dir / "cal.csv")]
    for version, forced in (
        ("1", ["--family", "dpca", "--window", "2"]),
        ("2", ["--families", "dpca"]),
    ):
        assert main([*args, *forced, "--name", "p", "--version", version]) == 0
        err = capsys.readouterr().err
        manifest = load_artifact(tmp_path / "p" / version).manifest
        smoothing = manifest.smoothing.label() if manifest.smoothing is not None else "none"
        shipped = f"dpca window {manifest.window}" + (
            "" if smoothing == "none" else f", {smoothing}"
        )
        assert seen[-1] == (shipped, True) and len(seen) == int(version)
        assert f"WARNING: blind: {shipped}" in err
        assert f"blind: {shipped}" in manifest.metrics["warnings"]
        assert f"WARNING: split: {shipped}" in err
        assert f"split: {shipped}" in manifest.metrics["warnings"]


def test_train_prints_the_ranking_the_manifest_records(
    data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["train", "--data", str(data_dir / "train.csv"), "--out", str(tmp_path)]
    args += ["--calibration-data", str(data_dir / "cal.csv"), "--families", "dpca,cva"]
    assert main([*args, "--name", "p", "--version", "1"]) == 0
    err = capsys.readouterr().err
    lines = err[err.index("ranking (the winner") :].splitlines()[1:]
    ranking = load_artifact(tmp_path / "p" / "1").manifest.metrics["selection"]["ranking"]
    assert len(ranking) > 2
    for place, (line, row) in enumerate(zip(lines, ranking, strict=False), start=1):
        assert line.lstrip().startswith(f"{place}. {row['family']} window {row['window']}")
        clean = f"(clean run {row['clean_flagged']:.1%})"
        if row["mean_detection"]:
            assert f"{row['mean_detection']:.1%} {clean} after" in line
        else:  # its delay would be only the penalty each unflagged fault counts
            assert f"none {clean}," in line and "readings" not in line
        assert line.endswith("chosen" if place == 1 else f"out at {row['out_at']}")
    detections = [row["mean_detection"] for row in ranking[1:]]
    assert detections == sorted(detections, reverse=True)
