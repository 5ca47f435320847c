"""TEP and SKAB protocols. Real-data tests skip when the data folder is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from models import benchmark
from models.__main__ import main
from models.benchmark import (
    DETECTORS,
    TEP_FAULTS,
    TEP_HARD_FAULTS,
    TEP_REFERENCE_FILE,
    TEP_SENSORS,
    BenchmarkDataMissing,
    DetectorSet,
    default_data_dir,
    load_skab,
    load_tep,
    mean_over,
    parse_tep_reference,
    run_skab,
)
from models.synthetic import generate_plant
from models.train import TrainConfig, train

DATA_DIR = default_data_dir()
needs_tep = pytest.mark.skipif(
    not (DATA_DIR / "tep" / "d00.dat").is_file(),
    reason=f"TEP data not found under {DATA_DIR} (set SENSOR_DATA_DIR to the shared data folder)",
)
needs_skab = pytest.mark.skipif(
    not (DATA_DIR / "skab" / "valve1").is_dir(),
    reason=f"SKAB data not found under {DATA_DIR} (set SENSOR_DATA_DIR to the shared data folder)",
)


def _reference_text(rows: dict[int, list[float]], average: list[float]) -> str:
    lines = ["Table S II. Detailed MDR (%)", "Fault PCA ICA DAE ... T 2 QP"]
    lines += [f"{k} " + " ".join(f"{v:.3f}" for v in values) for k, values in rows.items()]
    lines.append("Average " + " ".join(f"{v:.3f}" for v in average))
    lines.append("Average FPR 3.04 4.20 2.50 4.40 3.45 3.99")  # a shorter row that is not MDR
    return "\n".join(lines)


def test_parse_reference_table(tmp_path: Path) -> None:
    rows = {k: [float(k + c) for c in range(11)] for k in TEP_FAULTS}
    path = tmp_path / "ref.md"
    path.write_text(_reference_text(rows, [float(c) for c in range(11)]))
    per_fault, averages = parse_tep_reference(path)
    assert per_fault[3]["PCA-T2"] == 3.0 and per_fault[3]["PCA-Q"] == 4.0
    assert per_fault[21]["DAE"] == 25.0
    assert averages["DPI-3L"] == 10.0
    del rows[7]
    path.write_text(_reference_text(rows, [0.0] * 11))
    with pytest.raises(ValueError, match=r"missing faults \[7\]"):
        parse_tep_reference(path)


def test_mean_over_excludes_hard_faults() -> None:
    values = {k: float(k) for k in TEP_FAULTS}
    assert mean_over(values) == pytest.approx(11.0)
    kept = [k for k in TEP_FAULTS if k not in TEP_HARD_FAULTS]
    assert mean_over(values, exclude=TEP_HARD_FAULTS) == pytest.approx(np.mean(kept))


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
        (f"{row}\n{row}\nNaN {row[4:]}\n", ", line 3, column 1: value is NaN (missing value)"),
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

    monkeypatch.setattr(benchmark, "run_tep", no_run)
    monkeypatch.setattr(benchmark, "run_skab", no_run)
    afile = tmp_path / "report.md"
    afile.write_text("")
    for dataset in ("tep", "skab"):
        assert main(["benchmark", dataset, "--data-dir", str(tmp_path), "--out", str(afile)]) == 2
        assert capsys.readouterr().err.splitlines() == [
            f"error: --out {afile}: {afile} is a file, not a folder"
        ]


@needs_tep
def test_published_reference_parses_to_the_readme_averages() -> None:
    per_fault, averages = parse_tep_reference(DATA_DIR / "tep" / TEP_REFERENCE_FILE)
    assert averages["PCA-T2"] == pytest.approx(39.726)
    assert averages["PCA-Q"] == pytest.approx(31.887)
    assert averages["DAE"] == pytest.approx(20.476)
    assert mean_over({k: v["PCA-Q"] for k, v in per_fault.items()}) == pytest.approx(
        31.887, abs=0.01
    )


@needs_tep
@pytest.mark.slow
def test_tep_benchmark_end_to_end(tmp_path: Path) -> None:
    """The real protocol (about 10 s): limits, false alarms and MDRs are what they claim."""
    torch.set_num_threads(1)
    out = tmp_path / "tep"
    assert main(["benchmark", "tep", "--out", str(out), "--quiet"]) == 0
    body = json.loads((out / "report.json").read_text())
    for name in ("report.md", "per_fault_mdr.png", "histograms.png", "roc.png"):
        assert (out / name).stat().st_size > 0
    table = body["tables"][0]["rows"]
    faults = table[: len(TEP_FAULTS)]
    for row in faults:
        for column in ("AE (ours)", "PCA-T² (ours)", "PCA-SPE (ours)"):
            assert 0.0 <= row[column] <= 100.0
    by_fault = {int(row["fault"].rstrip(" *")): row for row in faults}
    # Faults 1, 2, 6, 7 are step changes every published method catches (MDR < 3%).
    for fault in (1, 2, 6, 7):
        assert by_fault[fault]["AE (ours)"] < 10.0
        assert by_fault[fault]["PCA-SPE (ours)"] < 10.0
    # Our PCA-SPE is a faithful baseline: within a few points of the published average.
    average = table[len(TEP_FAULTS)]
    assert average["fault"] == "average (21 faults)"
    assert abs(average["PCA-SPE (ours)"] - 31.887) < 5.0
    detectors = {d["detector"]: d for d in body["detectors"]}
    assert set(detectors) == set(DETECTORS)
    assert detectors["autoencoder"]["n_normal"] == 480  # the held-apart half of d00_te
    assert detectors["autoencoder"]["n_anomalous"] == 21 * 480
    acceptance = body["context"]["acceptance"]
    assert acceptance["passed"] == (
        acceptance["autoencoder_average_mdr"] < 31.887
        and acceptance["autoencoder_far_percent"] <= 5.0
    )
    low, high = acceptance["autoencoder_far_ci_percent"]
    assert low <= acceptance["autoencoder_far_percent"] <= high
    assert 0.3 < acceptance["stable_detector_far_above_bar_chance"] < 0.6
    # Every fault file has 480 readings, so the average MDR at the hindsight limit is the
    # pooled miss rate the detection table reports at 5% false alarms: two code paths agree.
    for name, mdr in acceptance["hindsight_average_mdr"].items():
        points = detectors[name]["recall_at_false_alarm_rate"]
        (point,) = [p for p in points if p["target_false_alarm_rate"] == 0.05]
        assert point["false_alarm_rate"] <= 0.05
        assert mdr == pytest.approx(100 * (1 - point["recall"]))
    verdict = body["tables"][1]
    assert verdict["title"].startswith("Reading the verdict")
    assert [row["detector"] for row in verdict["rows"]] == list(DETECTORS)


@needs_skab
def test_skab_loads_valve1_with_labels() -> None:
    files, anomaly_free = load_skab(DATA_DIR)
    assert len(files) == 16
    assert [f.name for f in files[:3]] == ["0.csv", "1.csv", "2.csv"]
    assert anomaly_free.n_sensors == 8 and "anomaly" not in anomaly_free.labels
    for file in files:
        assert file.readings.sensors == anomaly_free.sensors
        assert file.labels[:400].mean() < file.labels[400:].mean()  # faults are in the test part


@needs_skab
@pytest.mark.slow
def test_skab_protocol_counts_every_test_row_once() -> None:
    torch.set_num_threads(1)
    files, _ = load_skab(DATA_DIR)
    config = TrainConfig(epochs=3, patience=2)
    variants = run_skab(DATA_DIR, config, verbose=False, max_files=2)
    test_rows = sum(f.readings.n_readings - 400 for f in files[:2])
    anomalies = sum(int(f.labels[400:].sum()) for f in files[:2])
    assert [v.name for v in variants] == ["per-file", "anomaly-free model"]
    for variant in variants:
        assert set(variant.per_file) == {"0.csv", "1.csv"}
        for counts in variant.counts.values():
            assert counts.tp + counts.fp + counts.fn + counts.tn == test_rows
            assert counts.tp + counts.fn == anomalies


def test_detector_set_aligns_pca_with_windowed_autoencoder() -> None:
    """With a window of w readings the first w-1 have no autoencoder score: every detector
    drops them, so all scores describe the same readings; limits are calibration quantiles."""
    torch.set_num_threads(1)
    values = generate_plant(1200, seed=3, n_sensors=6).values
    calibration = generate_plant(600, seed=4, n_sensors=6).values
    sensors = [f"s{i}" for i in range(6)]
    result = train(values, sensors, TrainConfig(window=3, epochs=3, patience=2))
    detectors = DetectorSet.build(
        result, values, calibration, quantile=0.9, calibration_source="test"
    )
    scores = detectors.scores(values[:100])
    assert {name: s.shape for name, s in scores.items()} == dict.fromkeys(DETECTORS, (98,))
    np.testing.assert_allclose(scores["pca_spe"], detectors.pca.spe(values[2:100]))
    calibration_scores = detectors.scores(calibration)
    for name in DETECTORS:
        assert np.mean(calibration_scores[name] > detectors.limits[name]) <= 0.1
        assert detectors.limits[name] in calibration_scores[name]  # an order statistic
