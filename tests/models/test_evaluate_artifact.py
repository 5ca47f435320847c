"""``python -m models evaluate`` end to end on a tiny artifact trained here."""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models import evaluate_command
from models.__main__ import main
from models.data import write_readings_csv
from models.evaluate import OperatingRangeCheck, example_readings, operating_range_check
from models.evaluate_data import baseline_data, synthetic_sets
from models.evaluate_normal import NormalRateCheck
from models.events import windows_from_labels
from models.export import export_artifact
from models.readings import DataError, Readings
from models.scores import detector_scores
from models.synthetic import generate_plant, inject_anomalies
from models.train import train
from models.train_config import TrainConfig
from service.scoring.artifact import load_artifact, sha256_array

N_SENSORS = 8


@pytest.fixture(scope="module")
def artifact_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    training = generate_plant(3000, seed=0, n_sensors=N_SENSORS)
    calibration = generate_plant(1500, seed=1, n_sensors=N_SENSORS)
    result = train(
        training.values,
        training.sensors,
        TrainConfig(epochs=15, patience=5, batch_size=128),
        calibration_values=calibration.values,
        calibration_source=calibration.source,
    )
    out = tmp_path_factory.mktemp("models") / "tiny" / "1"
    record = {
        "training": {"source": training.source, "sha256": sha256_array(training.values)},
        "calibration": {"source": calibration.source, "sha256": sha256_array(calibration.values)},
    }
    export_artifact(
        result,
        out,
        name="tiny",
        version="1",
        training_data_sha256=sha256_array(training.values),
        training_data=record,
        include_export=False,
    )
    return out


def _report(out: Path) -> dict[str, object]:
    body = json.loads((out / "report.json").read_text())
    assert isinstance(body, dict)
    return body


def test_synthetic_evaluation_writes_report_with_baseline(
    artifact_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    status = main(
        ["evaluate", "--model", str(artifact_dir), "--synthetic", "--readings", "4000",
         "--out", str(out)]
    )  # fmt: skip
    assert status == 0
    for name in ("report.md", "histograms.png", "roc.png", "pr.png", "contributions.png"):
        assert (out / name).stat().st_size > 0, name
    body = _report(out)
    detectors = {d["detector"]: d for d in body["detectors"]}  # type: ignore[attr-defined]
    # The model is named by its family and window, as its manifest records them.
    assert set(detectors) == {"autoencoder over 1 reading", "pca_t2", "pca_spe"}
    ae = detectors["autoencoder over 1 reading"]
    manifest = load_artifact(artifact_dir).manifest
    assert ae["threshold"] == pytest.approx(manifest.threshold.value)
    counts = ae["at_threshold"]
    assert counts["tp"] + counts["fn"] == ae["n_anomalous"] > 0
    assert counts["fp"] + counts["tn"] == ae["n_normal"] > 0
    assert ae["roc_auc"] > 0.6  # steps, drifts and spikes are separable even for a tiny model
    assert {"spike", "step", "drift", "stuck", "correlation"} <= set(ae["per_kind"])
    # every detector is evaluated on exactly the same readings
    assert len({(d["n_normal"], d["n_anomalous"]) for d in detectors.values()}) == 1
    markdown = (out / "report.md").read_text()
    assert "Capacity diagnosis" in markdown and "Which sensor?" in markdown
    for name in ("recall_at_far.png", "timeline.png", "examples.png"):
        assert (out / name).stat().st_size > 0, name
    # The rules per kind: every kind has a verdict agreeing with its own figures.
    assert "## Verdict per anomaly kind" in markdown
    for kind, verdict in ae["verdicts"].items():
        assert verdict["recall"] == pytest.approx(ae["per_kind"][kind]["recall"])
        separation = verdict["separability_log_scores"]
        separates = separation["p_value"] < 0.01 and separation["cohens_d"] > 2
        capacity_ok = verdict["median_ratio"] >= 1.5 and verdict["roc_auc"] >= 0.6
        expected = (
            "ok" if separates and capacity_ok else "weak" if capacity_ok else ("not separated")
        )
        assert verdict["verdict"] == expected, kind
    # Event level: the labelled run's stretches, each figure beside its random baseline.
    events = body["context"]["alerts (event level)"]  # type: ignore[index]
    _, anomalous = synthetic_sets(manifest, n_readings=4000)
    stretches = windows_from_labels("run", anomalous.labels[manifest.window - 1 :])
    assert events["windows"] == len(stretches) > 0
    assert 0.0 <= events["windows_alerted_random"] <= 1.0
    assert 0.0 <= events["alerts_outside_windows_random"] <= 1.0
    assert events["false_alerts_per_day"] is not None  # the synthetic runs have timestamps
    titles = [t["title"] for t in body["tables"]]  # type: ignore[attr-defined]
    assert "Alerts (event level)" in titles and "Detection delay per anomaly kind" in titles
    # A one-reading model without smoothing: a glitch is flagged and never alerts.
    spike = body["context"]["lone spike"]  # type: ignore[index]
    assert spike["trials"] > 0 and spike["flagged"] == spike["trials"]
    assert spike["alerted"] == 0 and spike["ok"] is True and spike["verdict"] == "ok"
    assert spike["message"].startswith("ok:")
    # The report's line is the check's message; its figures are in report.json.
    assert f"- **lone spike**: {spike['message']}\n" in markdown
    assert "trials = " not in markdown


def test_file_evaluation_reads_labels_and_kinds(artifact_dir: Path, tmp_path: Path) -> None:
    normal = generate_plant(1500, seed=21, n_sensors=N_SENSORS)
    faulty = generate_plant(3000, seed=22, n_sensors=N_SENSORS)
    injected = inject_anomalies(faulty.values, seed=23, kinds=("step", "spike"))
    names = np.array(faulty.sensors)[np.maximum(injected.affected_sensor, 0)]
    anomalous = Readings(
        values=injected.values,
        sensors=faulty.sensors,
        timestamps=faulty.timestamps,
        source="faulty",
        labels={
            "anomaly": injected.labels.astype(float),
            "anomaly_kind": injected.kinds,
            "anomaly_sensor": np.where(injected.labels, names, ""),
        },
    )
    # columns written in another order: evaluation matches them by name
    reordered = Readings(
        values=normal.values[:, ::-1],
        sensors=normal.sensors[::-1],
        timestamps=normal.timestamps,
        source="normal",
    )
    write_readings_csv(tmp_path / "normal.csv", reordered)
    write_readings_csv(tmp_path / "anomalous.csv", anomalous)
    out = tmp_path / "report"
    status = main(
        ["evaluate", "--model", str(artifact_dir), "--normal", str(tmp_path / "normal.csv"),
         "--anomalous", str(tmp_path / "anomalous.csv"), "--out", str(out)]
    )  # fmt: skip
    assert status == 0
    body = _report(out)
    ae = body["detectors"][0]  # type: ignore[index]
    assert ae["n_anomalous"] == int(injected.labels.sum())
    assert ae["n_normal"] == 1500 + int((~injected.labels).sum())
    assert set(ae["per_kind"]) == {"step", "spike"}
    step = ae["per_kind"]["step"]
    assert step["tp"] + step["fn"] == int(np.sum(injected.kinds == "step"))
    assert step["fp"] + step["tn"] == ae["n_normal"]  # each kind is scored against all normals
    # Normal operation alone: the normal file's readings, whatever the labelled file adds.
    artifact = load_artifact(artifact_dir)
    flagged = detector_scores(artifact, normal.values) > artifact.manifest.threshold.value
    assert ae["operation_false_alarm_rate"] == pytest.approx(float(flagged.mean()))
    attribution = next(t for t in body["tables"] if t["title"].startswith("Which sensor"))  # type: ignore[attr-defined]
    assert attribution["rows"][0]["anomaly kind"] == "all"


def _labelled_files(folder: Path, labels_column: str) -> tuple[Path, Path, int]:
    """Normal and anomalous CSV files whose ground truth is in ``labels_column``."""
    normal = generate_plant(1000, seed=51, n_sensors=N_SENSORS)
    faulty = generate_plant(1500, seed=52, n_sensors=N_SENSORS)
    injected = inject_anomalies(faulty.values, seed=53, kinds=("step",))
    folder.mkdir()
    paths = folder / "normal.csv", folder / "anomalous.csv"
    write_readings_csv(
        paths[0], replace(normal, labels={labels_column: np.zeros(normal.n_readings)})
    )
    write_readings_csv(
        paths[1],
        replace(faulty, values=injected.values, labels={labels_column: injected.labels * 1.0}),
    )
    return *paths, int(injected.labels.sum())


def _evaluate(artifact_dir: Path, normal: Path, anomalous: Path, out: Path, *extra: str) -> int:
    return main(
        ["evaluate", "--model", str(artifact_dir), "--normal", str(normal),
         "--anomalous", str(anomalous), "--no-baseline", "--out", str(out), *extra]
    )  # fmt: skip


def test_millisecond_timestamps_are_warned_of(
    artifact_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Unix milliseconds read as seconds put false alerts per day a thousand times too low;
    the run still evaluates (the unit is the user's to write), said loudly per file."""
    normal, anomalous, _ = _labelled_files(tmp_path / "files", "anomaly")
    start = 1_767_600_000_000.0  # 2026-01-05 in milliseconds
    for path in (normal, anomalous):
        lines = path.read_text().splitlines()
        stamped = [
            f"{start + 60_000.0 * i!r},{line.split(',', 1)[1]}" for i, line in enumerate(lines[1:])
        ]
        path.write_text("\n".join([lines[0], *stamped]) + "\n")
    capsys.readouterr()
    assert _evaluate(artifact_dir, normal, anomalous, tmp_path / "out") == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "Unix milliseconds" in line]
    assert [line.split(":")[1].strip() for line in warned] == [str(normal), str(anomalous)]
    assert "1,000 times off; write seconds (divide by 1,000) or ISO 8601 times" in warned[0]
    notes = _report(tmp_path / "out")["notes"]  # beside the per-day figures it concerns
    assert len([n for n in notes if "Unix milliseconds" in n]) == 2, notes  # type: ignore[union-attr]
    assert "Unix milliseconds" in (tmp_path / "out" / "report.md").read_text()


def test_labels_column_names_the_ground_truth(
    artifact_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A column named by --labels-column is the ground truth and no sensor, in both files;
    one the anomalous file lacks (a typo) is an error, not 'every reading is anomalous'."""
    normal, anomalous, n_anomalous = _labelled_files(tmp_path / "default", "anomaly")
    assert _evaluate(artifact_dir, normal, anomalous, tmp_path / "expected") == 0
    normal, anomalous, _ = _labelled_files(tmp_path / "named", "fault")

    def evaluate(anomalous: Path, out: str, *extra: str) -> int:
        return _evaluate(artifact_dir, normal, anomalous, tmp_path / out, *extra)

    assert evaluate(anomalous, "out", "--labels-column", "fault") == 0
    expected = _report(tmp_path / "expected")["detectors"]
    assert _report(tmp_path / "out")["detectors"] == expected
    assert expected[0]["n_anomalous"] == n_anomalous  # type: ignore[index]
    capsys.readouterr()

    assert evaluate(anomalous, "typo", "--labels-column", "falut") == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {anomalous}: no column 'falut' (--labels-column); its columns: the model's "
        f"{N_SENSORS} sensors, a timestamp, 'fault'"
    ]
    assert not (tmp_path / "typo").exists()
    assert evaluate(anomalous, "kinds", "--kinds-column", "kind") == 2
    assert "no column 'kind' (--kinds-column)" in capsys.readouterr().err
    inverted = tmp_path / "inverted.csv"  # the -1 anomalous / 1 normal convention
    inverted.write_text(anomalous.read_text().replace(",1\n", ",-1\n").replace(",0\n", ",1\n"))
    assert evaluate(inverted, "inverted", "--labels-column", "fault") == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: {inverted}, column fault: labels must be 0 (normal) or 1 (anomalous) in every "
        "row, found -1, 1; a column of fault numbers or of -1/1 needs converting to 0/1 first"
    ]
    values = np.loadtxt(anomalous, delimiter=",", skiprows=1, usecols=range(1, N_SENSORS + 1))
    np.save(tmp_path / "anomalous.npy", values)
    assert evaluate(tmp_path / "anomalous.npy", "npy", "--labels-column", "fault") == 2
    assert "a .npy file has no header row" in capsys.readouterr().err


def test_anomalous_file_without_labels_counts_as_anomalous_and_says_so(
    artifact_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    normal, anomalous, _ = _labelled_files(tmp_path / "data", "fault")
    assert _evaluate(artifact_dir, normal, anomalous, tmp_path / "out") == 0
    warning = (
        f"{anomalous} has no 'anomaly' column: every reading in it counts as anomalous; its "
        "column 'fault' looks like labels: pass --labels-column fault to use it"
    )
    assert f"warning: {warning}" in capsys.readouterr().err.splitlines()
    body = _report(tmp_path / "out")
    assert f"WARNING: {warning}." in body["notes"]  # type: ignore[operator]
    skip = load_artifact(artifact_dir).manifest.window - 1
    assert body["detectors"][0]["n_anomalous"] == 1500 - skip  # type: ignore[index]


def test_refuses_tampered_artifact_and_missing_data(artifact_dir: Path, tmp_path: Path) -> None:
    assert main(["evaluate", "--model", str(artifact_dir)]) == 2
    copy = tmp_path / "tampered"
    copy.mkdir()
    for path in artifact_dir.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    (copy / "model.pt").write_bytes((copy / "model.pt").read_bytes() + b"x")
    assert main(["evaluate", "--model", str(copy), "--synthetic"]) == 2


def test_baseline_refuses_data_that_is_not_the_training_data(
    artifact_dir: Path, tmp_path: Path
) -> None:
    manifest = load_artifact(artifact_dir).manifest
    data = baseline_data(manifest)  # regenerated from the recorded generator and checked
    assert data.train.shape == (int(manifest.training["splits"]["train"][1]), N_SENSORS)
    other = generate_plant(3000, seed=5, n_sensors=N_SENSORS)
    write_readings_csv(tmp_path / "other.csv", other)
    with pytest.raises(DataError, match="fingerprint"):
        baseline_data(manifest, train_file=tmp_path / "other.csv")


def test_warns_when_evaluated_on_its_own_calibration_data(
    artifact_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    calibration = generate_plant(1500, seed=1, n_sensors=N_SENSORS)  # as in the fixture
    faulty = generate_plant(1500, seed=31, n_sensors=N_SENSORS)
    injected = inject_anomalies(faulty.values, seed=32, kinds=("step",))
    write_readings_csv(tmp_path / "normal.csv", calibration)
    write_readings_csv(
        tmp_path / "anomalous.csv",
        Readings(
            injected.values,
            faulty.sensors,
            None,
            "faulty",
            labels={"anomaly": injected.labels.astype(float)},
        ),
    )
    out = tmp_path / "report"
    assert (
        main(
            [
                "evaluate",
                "--model",
                str(artifact_dir),
                "--normal",
                str(tmp_path / "normal.csv"),
                "--anomalous",
                str(tmp_path / "anomalous.csv"),
                "--out",
                str(out),
                "--no-baseline",
            ]
        )  # fmt: skip
        == 0
    )
    notes = _report(out)["notes"]
    assert any("normal data is this model's calibration data" in n for n in notes)  # type: ignore[attr-defined]
    assert not any("anomalous data is" in n for n in notes)  # type: ignore[attr-defined]
    # The terminal says it too: in-sample figures must not pass unnoticed.
    err = capsys.readouterr().err
    assert "warning: the normal data is this model's calibration data" in err
    assert "anomalous data is" not in err


def test_input_mistakes_are_one_error_line_that_says_what_to_do(
    artifact_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    normal, anomalous, _ = _labelled_files(tmp_path / "data", "anomaly")
    out = str(tmp_path / "out")
    model = ["evaluate", "--model", str(artifact_dir), "--out", out, "--no-baseline"]
    # --synthetic would silently replace the files given.
    assert main([*model, "--synthetic", "--normal", str(normal)]) == 2
    assert capsys.readouterr().err.startswith("error: --synthetic evaluates on fresh synthetic")
    # A synthetic run too short to hold faults: the figures it lacks, and the option to raise.
    assert main([*model, "--synthetic", "--readings", "30"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: the evaluation needs at least two scored normal and two")
    assert err.endswith("(--readings 30: try more)")
    # A file stored sensors x readings, as TEP's d00.dat is.
    stored = tmp_path / "transposed.npy"
    np.save(stored, generate_plant(500, seed=61, n_sensors=N_SENSORS).values.T)
    assert _evaluate(artifact_dir, stored, anomalous, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("500 columns but the model has 8 sensors (its rows are the sensors: "
                        "pass --transpose, or --normal-transpose or --anomalous-transpose for "
                        "this file alone)")  # fmt: skip
    # Which is what TEP needs: its training run stored transposed, its fault runs not.
    assert _evaluate(artifact_dir, stored, anomalous, tmp_path / "out", "--normal-transpose") == 0
    assert _evaluate(artifact_dir, stored, anomalous, tmp_path / "out2", "--transpose") == 2
    # Too short for the model's window: which file.
    bundled = Path(__file__).parents[2] / "models" / "synthetic-plant" / "2"
    window, n_sensors = load_artifact(bundled).manifest.window, 50
    short, long = tmp_path / "short.npy", tmp_path / "long.npy"
    np.save(short, np.zeros((3, n_sensors)))
    np.save(long, np.zeros((500, n_sensors)))
    assert _evaluate(bundled, long, short, tmp_path / "out") == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after: no labels column
    assert err.startswith(f"error: the anomalous readings ({short}")
    assert err.endswith(f"are 3, fewer than one window of the {window} readings the model "
                        "scores at a time")  # fmt: skip


def test_examples_show_each_kind_then_other_moments_not_neighbours() -> None:
    scores = np.r_[np.zeros(50), np.linspace(10.0, 5.0, 40), np.linspace(3.0, 2.0, 10)]
    detected = scores > 1.0
    kinds = np.array([""] * 50 + ["step"] * 40 + ["spike"] * 10, dtype=object)
    per_sensor = np.ones((100, 4))
    examples = example_readings(
        per_sensor, scores, detected, kinds, None, 2.0, smoothed=True, apart=10, split=30
    )
    # The best of each kind first, then the best at least 10 readings from all chosen.
    assert [e.title for e in examples] == [
        "spike, labelled run, reading 60 (smoothed score 1.5x the threshold)",
        "step, labelled run, reading 20 (smoothed score 5x the threshold)",
        "step, labelled run, reading 30 (smoothed score 4.36x the threshold)",
        "step, labelled run, reading 40 (smoothed score 3.72x the threshold)",
        "step, labelled run, reading 50 (smoothed score 3.08x the threshold)",
    ]  # five: no other detected reading is 10 from all of these
    bare = example_readings(per_sensor, scores, detected, kinds, None, 2.0, split=30, limit=2)
    assert [e.title for e in bare] == [
        "spike, labelled run, reading 60 (score 1.5x the threshold)",
        "step, labelled run, reading 20 (score 5x the threshold)",
    ]


@pytest.mark.parametrize(
    ("before", "after", "ok"),
    [(0.01, 0.012, True), (0.01, 0.029, True), (0.01, 0.03, False), (0.0, 0.2, False)],
)
def test_operating_range_rule(before: float, after: float, ok: bool) -> None:
    normal = NormalRateCheck(10, 1000, 0.01, (0.005, 0.02))
    check = OperatingRangeCheck(1.5, 3, before, after, normal, "train on more.")
    assert check.ok is ok
    assert check.message.startswith("ok:" if ok else "WARNING:")
    assert f"{after:.1%} flagged" in check.message


def test_bundled_model_alarms_on_a_wider_operating_range() -> None:
    """The bundled model only reconstructs the range it was trained on; the report says so
    rather than hiding it."""
    artifact = load_artifact(Path(__file__).parents[2] / "models" / "synthetic-plant" / "2")
    normal, _ = synthetic_sets(artifact.manifest, n_readings=2000)
    check = operating_range_check(artifact, normal.values)
    assert not check.ok
    assert check.flagged_after > 10 * check.flagged_before
    unchanged = operating_range_check(artifact, normal.values, stretch=1.0)
    assert unchanged.flagged_after == unchanged.flagged_before


def test_plane_model_passes_the_operating_range_check(tmp_path: Path) -> None:
    training = generate_plant(3000, seed=0, n_sensors=N_SENSORS)
    calibration = generate_plant(1500, seed=1, n_sensors=N_SENSORS)
    result = train(
        training.values,
        training.sensors,
        TrainConfig(epochs=15, patience=5, batch_size=128, plane_variance=0.9),
        calibration_values=calibration.values,
    )
    out = tmp_path / "planed" / "1"
    export_artifact(
        result,
        out,
        name="planed",
        version="1",
        training_data_sha256=sha256_array(training.values),
        training_data={"training": {"source": training.source}},
        include_export=False,
    )
    normal = generate_plant(2000, seed=5, n_sensors=N_SENSORS).values
    check = operating_range_check(load_artifact(out), normal)
    assert check.ok, check.message


def test_unreadable_data_file_is_one_error_line(
    artifact_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_readings_csv(
        tmp_path / "anomalous.csv", generate_plant(500, seed=41, n_sensors=N_SENSORS)
    )
    locked = tmp_path / "normal.csv"
    write_readings_csv(locked, generate_plant(500, seed=42, n_sensors=N_SENSORS))
    real_open = Path.open

    def open_unless_locked(self: Path, *args: Any, **kwargs: Any) -> Any:
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_unless_locked)  # chmod does not stop root
    refusals = {locked: "cannot be read: Permission denied", tmp_path: "is a folder, not a file"}
    for normal, reason in refusals.items():
        status = main(
            ["evaluate", "--model", str(artifact_dir), "--normal", str(normal),
             "--anomalous", str(tmp_path / "anomalous.csv"), "--no-baseline",
             "--out", str(tmp_path / "report")]
        )  # fmt: skip
        assert status == 2
        assert capsys.readouterr().err.splitlines() == [f"error: {normal}: {reason}"]


def test_out_that_cannot_hold_the_report_is_refused_before_the_work(
    artifact_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("evaluated although --out cannot hold the report")

    monkeypatch.setattr(evaluate_command, "evaluate_artifact", no_work)
    afile = tmp_path / "report.md"
    afile.write_text("")
    for out in (afile, afile / "sub"):
        assert (
            main(["evaluate", "--model", str(artifact_dir), "--synthetic", "--out", str(out)]) == 2
        )
        assert capsys.readouterr().err.splitlines() == [
            f"error: --out {out}: {afile} is a file, not a folder"
        ]
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # chmod does not stop root
    out = tmp_path / "new" / "report"
    assert main(["evaluate", "--model", str(artifact_dir), "--synthetic", "--out", str(out)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --out {out}: no permission to write in {tmp_path}"
    ]


def test_report_that_cannot_be_written_is_one_error_line(
    artifact_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device", str(tmp_path / "report.json"))

    monkeypatch.setattr(evaluate_command, "write_report", disk_full)
    out = tmp_path / "report"
    assert main(["evaluate", "--model", str(artifact_dir), "--synthetic", "--readings", "2000",
                 "--no-baseline", "--out", str(out)]) == 2  # fmt: skip
    assert capsys.readouterr().err.splitlines() == [
        f"error: writing the report: [Errno 28] No space left on device: '{tmp_path}/report.json'"
    ]


def test_a_normal_file_the_model_flags_throughout_is_said_and_not_blamed_on_copying(
    artifact_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A "normal" file from elsewhere (here: every sensor 20 training SDs away) is flagged
    throughout: the report says so with the numbers, no check reads ok on it, and the
    capacity diagnosis does not tell the user the model copies its input."""
    artifact = load_artifact(artifact_dir)
    scale = np.asarray(artifact.manifest.scaler.scale)
    elsewhere = generate_plant(1500, seed=61, n_sensors=N_SENSORS)
    moved = replace(elsewhere, values=elsewhere.values + 20 * scale)
    faulty = generate_plant(1500, seed=62, n_sensors=N_SENSORS)
    injected = inject_anomalies(faulty.values, seed=63, kinds=("step",))
    write_readings_csv(tmp_path / "normal.csv", moved)
    write_readings_csv(
        tmp_path / "anomalous.csv",
        replace(faulty, values=injected.values, labels={"anomaly": injected.labels * 1.0}),
    )
    out = tmp_path / "report"
    assert _evaluate(artifact_dir, tmp_path / "normal.csv", tmp_path / "anomalous.csv", out) == 0
    printed = capsys.readouterr().out
    body = _report(out)
    context = body["context"]
    assert context["normal readings"].startswith(  # type: ignore[index]
        "WARNING: 100.0% of the normal readings flagged (1500 of 1500"
    )
    assert context["operating range"].startswith("WARNING:")  # type: ignore[index]
    model = body["detectors"][0]  # type: ignore[index]
    assert not model["capacity"]["ok"]
    verdicts = [v["message"] for v in model["verdicts"].values()]
    for message in [model["capacity"]["message"], *verdicts]:
        assert "overpowered" not in message and "latent" not in message
    assert "normal readings themselves are 100.0% flagged" in model["capacity"]["message"]
    assert "operating range (autoencoder over 1 reading): WARNING" in printed
    assert re.search(r"\bnan\b", printed, re.IGNORECASE) is None
