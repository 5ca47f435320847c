"""The TEP benchmark's verdict lines: a target and its outcome, never a false inequality."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from models.benchmarks.common import DETECTORS, DetectorSet
from models.benchmarks.tep import (
    TEP_FAULTS,
    TEP_PUBLISHED_COLUMNS,
    TEP_SENSORS,
    TepBenchmark,
    TepReference,
)
from models.benchmarks.tep_report import target_lines, write_tep_report
from models.lone_spike import LoneSpikeCheck
from models.synthetic import generate_plant
from models.train import train
from models.train_config import TrainConfig


def _verdict(mdr: float, far95: float, far99: float) -> dict[str, object]:
    return {
        "model_average_mdr_95": mdr,
        "model_pooled_far_95": far95,
        "bar_average_mdr": 18.0,
        "bar_far_95": 5.0,
        "passed_95": mdr <= 18.0 and far95 <= 5.0,
        "beats_published_dae": mdr < 20.476,
        "model_pooled_far_99": far99,
        "bar_far_99": 1.5,
        "passed_99": far99 <= 1.5,
    }


def test_a_missed_target_reads_as_a_target_not_met_with_its_figure() -> None:
    lines = target_lines(_verdict(16.7, 6.01, 2.2))
    text = "\n".join(lines)
    assert "  pooled false alarms at most 5%: not met (6.01%)" in lines
    assert "  average missed-detection rate at most 18%: met (16.70%)" in lines
    assert "  both: not met" in lines
    assert "  pooled false alarms at most 1.5%: not met (2.20%)" in lines
    assert "<=" not in text and "issue" not in text and "bars" not in text


def test_the_families_line_says_what_it_compares() -> None:
    lines = target_lines(_verdict(17.8, 3.5, 0.0), ("autoencoder", "conv", "vae"))
    assert lines[4] == (
        "  the best of autoencoder,conv,vae alone misses less than the published DAE "
        "(20.476% on average): met (17.80%)"
    )
    assert "  both: met" in lines


def test_the_report_names_the_model_by_family_and_window(tmp_path: Path) -> None:
    """A CVA's row is "cva over 2 readings", and a fault it scores like normal readings gets
    CVA's advice, not the autoencoder's latent size."""
    plant = generate_plant(1500, seed=0, n_sensors=len(TEP_SENSORS))
    result = train(
        plant.values[:1000],
        TEP_SENSORS,
        TrainConfig(family="cva", window=2),
        calibration_values=plant.values[1000:],
    )
    detectors = DetectorSet.build(
        result, plant.values[:1000], plant.values[1000:], quantile=0.95, calibration_source="c"
    )
    rng = np.random.default_rng(0)
    runs = {"run01": rng.lognormal(0, 0.5, 100), "run02": rng.lognormal(0, 0.5, 100)}
    faults = {k: rng.lognormal(0 if k == 3 else 3, 0.5, 50) for k in TEP_FAULTS}
    columns = dict.fromkeys(TEP_PUBLISHED_COLUMNS, 10.0)
    bench = TepBenchmark(
        detectors=detectors,
        limits={q: dict.fromkeys(DETECTORS, 3.0) for q in (0.95, 0.99)},
        reference=TepReference(dict.fromkeys(TEP_FAULTS, columns), columns, {}),
        limit_scores=dict.fromkeys(DETECTORS, rng.lognormal(0, 0.5, 200)),
        run_scores=dict.fromkeys(DETECTORS, runs),
        fault_scores=dict.fromkeys(DETECTORS, faults),
        normal_errors=rng.random((200, len(TEP_SENSORS))),
        fault_errors=rng.random((50 * len(TEP_FAULTS), len(TEP_SENSORS))),
        seconds=0.0,
        lone_spike=LoneSpikeCheck(8.0, 2, "none", 20, 0, 0, 0, 0, 100, 52),
    )
    write_tep_report(bench, tmp_path)
    body = json.loads((tmp_path / "report.json").read_text())
    model = body["detectors"][0]
    assert model["detector"] == "cva over 2 readings"
    fault = model["verdicts"]["fault 03"]
    assert fault["verdict"] == "not separated"
    assert "latent" not in fault["message"] and "CVA is a linear statistic" in fault["message"]
    assert "--window more than 2" in fault["message"]
    markdown = (tmp_path / "report.md").read_text()
    assert "| cva over 2 readings |" in markdown and "| autoencoder |" not in markdown
