"""``python -m models benchmark``: refusals are one error line, before any work."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

from models import benchmark_command
from models.__main__ import main
from models.benchmarks.common import BenchmarkDataMissing
from models.benchmarks.tep import (
    TEP_FAULTS,
    TEP_REFERENCE_FILE,
    TEP_SENSORS,
    load_tep,
)


def test_missing_data_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(BenchmarkDataMissing, match="SENSOR_DATA_DIR"):
        load_tep(tmp_path)
    assert main(["benchmark", "skab", "--data-dir", str(tmp_path), "--quiet"]) == 2
    assert "SKAB data folder not found" in capsys.readouterr().err


def _tep_folder(data_dir: Path, *, d00_te: str | None = None, reference: str | None = None) -> Path:
    """A TEP folder of tiny files: d00.dat stored sensors x readings, as published."""
    rng = np.random.default_rng(0)
    folder = data_dir / "tep"
    folder.mkdir(parents=True)
    np.savetxt(folder / "d00.dat", rng.normal(size=(len(TEP_SENSORS), 20)))
    for name in ["d00_te.dat", *(f"d{k:02d}.dat" for k in TEP_FAULTS)]:
        np.savetxt(folder / name, rng.normal(size=(20, len(TEP_SENSORS))))
    (folder / "normal").mkdir()
    for run in ("run01.dat", "run02.dat"):
        np.savetxt(folder / "normal" / run, rng.normal(size=(20, len(TEP_SENSORS))))
    if d00_te is not None:
        (folder / "d00_te.dat").write_text(d00_te)
    if reference is not None:
        (folder / TEP_REFERENCE_FILE).write_text(reference)
    return folder


def _one_error_line(dataset: str, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> str:
    out = data_dir / "report"
    assert (
        main(["benchmark", dataset, "--data-dir", str(data_dir), "--out", str(out), "--quiet"]) == 2
    )
    (line,) = capsys.readouterr().err.splitlines()
    return line


def test_bad_tep_data_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    row = " ".join(["1.0"] * 52)
    refusals = [  # d00_te.dat, what follows its path in the error
        (f"{row}\n{row}\nNaN {row[4:]}\n", ", line 3, column 1: missing value"),
        (f"{row}\n{row} 2.0\n", ", line 2: ragged row: 53 fields where line 1 has 52"),
        (f"{row[4:]}\n", ": 51 columns, expected 52"),
    ]
    for case, (text, reason) in enumerate(refusals):
        folder = _tep_folder(tmp_path / str(case), d00_te=text)
        line = _one_error_line("tep", tmp_path / str(case), capsys)
        assert line.startswith(f"error: {folder / 'd00_te.dat'}{reason}")
    _tep_folder(tmp_path / "unpublished")
    line = _one_error_line("tep", tmp_path / "unpublished", capsys)
    assert line.startswith(f"error: {TEP_REFERENCE_FILE} not found")
    folder = _tep_folder(tmp_path / "no-runs")
    for run in (folder / "normal").iterdir():
        run.unlink()
    assert _one_error_line("tep", tmp_path / "no-runs", capsys) == (
        f"error: {folder / 'normal'}: no run*.dat files: false alarms are counted on them"
    )
    folder = _tep_folder(tmp_path / "garbled", reference="Fault PCA\n1 2.0\n")
    assert _one_error_line("tep", tmp_path / "garbled", capsys) == (
        f"error: {folder / TEP_REFERENCE_FILE}: could not parse the MDR table "
        f"(missing faults {list(TEP_FAULTS)})"
    )


def test_bad_skab_data_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "datetime;a;b;anomaly;changepoint\n"
    good = header + "2020-03-09 11:14:34;1.0;2.0;0.0;0.0\n"
    refusals = [  # valve1/1.csv, what follows its path in the error
        (header + "2020-03-09 11:14:34;1.0;0.0;0.0\n", ", line 2: ragged row: 4 fields"),
        (good.replace(";anomaly;", ";anomalous;"), ": no 'anomaly' column"),
        (good.replace(";0.0;0.0", ";no;0.0"), ", column anomaly: labels must be 0/1 in every row"),
        (good.replace(";0.0;0.0", ";2.0;0.0"), ", column anomaly: labels must be 0/1 in every row"),
        (good.replace(";b;", ";c;"), ": sensors differ from 0.csv's"),
    ]
    for case, (text, reason) in enumerate(refusals):
        valve = tmp_path / str(case) / "skab" / "valve1"
        valve.mkdir(parents=True)
        (valve / "0.csv").write_text(good)
        (valve / "1.csv").write_text(text)
        line = _one_error_line("skab", tmp_path / str(case), capsys)
        assert line.startswith(f"error: {valve / '1.csv'}{reason}")


def test_out_that_cannot_hold_the_report_is_refused_before_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("ran although --out cannot hold the report")

    monkeypatch.setattr(benchmark_command, "run_tep", no_run)
    monkeypatch.setattr(benchmark_command, "run_skab", no_run)
    afile = tmp_path / "report.md"
    afile.write_text("")
    for dataset in ("tep", "skab"):
        assert main(["benchmark", dataset, "--data-dir", str(tmp_path), "--out", str(afile)]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"error: --out {afile}: {afile} is a file, not a folder"
        ]


def test_families_choose_the_tep_model_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["benchmark", "skab", "--data-dir", str(tmp_path), "--quiet"]
    assert main([*args, "--families", "autoencoder,vae"]) == 2
    assert "--families chooses the model of `benchmark tep`" in capsys.readouterr().err
    tep = ["benchmark", "tep", "--data-dir", str(tmp_path), "--quiet"]
    assert main([*tep, "--families", "conv", "--family", "cva"]) == 2
    assert "--families chooses the model of `benchmark tep`" in capsys.readouterr().err
    # The chosen model's own window and smoothing are measured: giving them is refused.
    assert main([*tep, "--families", "conv", "--window", "8"]) == 2
    assert "--window and --smoothing go with --family" in capsys.readouterr().err
    assert main([*tep, "--smoothing", "ewma:0.3"]) == 2
    assert "--window and --smoothing go with --family" in capsys.readouterr().err


def test_plane_variance_says_it_trains_an_autoencoder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--plane-variance is an autoencoder option: without --family the benchmark says, before
    any work, that it trains an autoencoder over 1 reading without smoothing."""
    args = ["benchmark", "tep", "--data-dir", str(tmp_path), "--plane-variance", "0.9"]
    assert main([*args, "--out", str(tmp_path / "report"), "--quiet"]) == 2  # no data here
    err = capsys.readouterr().err
    assert err.startswith(
        "--plane-variance applies to the autoencoder: training an autoencoder over 1 reading "
        "without smoothing instead of the model `train` chooses"
    )
    # Given a family, nothing is implied: no notice.
    assert main([*args, "--family", "autoencoder", "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "applies to the autoencoder" not in capsys.readouterr().err
    # Another family is refused by the option's name, before any work.
    assert main([*args, "--family", "cva", "--out", str(tmp_path / "c"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--plane-variance is an autoencoder option: it needs --family autoencoder" in err
    assert "plane_variance" not in err and not (tmp_path / "c").exists()


def test_doctests() -> None:
    assert doctest.testmod(benchmark_command).failed == 0
