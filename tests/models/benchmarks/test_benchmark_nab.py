"""The NAB event-level protocol. Real-data tests skip when the data folder is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmark_data import DATA_DIR, needs_nab

from models.__main__ import main
from models.benchmarks.nab import (
    NabSeries,
    describe_nab_rule,
    load_nab,
    run_nab,
    window_indices,
    write_nab_report,
)
from models.events import AlertRule
from models.selection_rule import candidate_label
from models.train_config import TrainConfig


def test_windows_become_index_ranges_of_the_scored_readings() -> None:
    stamps = np.arange("2024-01-01T00:00", "2024-01-01T01:40", 10, dtype="datetime64[m]")
    stamps = stamps.astype("datetime64[s]")  # ten readings, ten minutes apart
    series = NabSeries(
        "s",
        np.zeros((10, 1)),
        stamps,
        [
            (np.datetime64("2024-01-01T00:05", "s"), np.datetime64("2024-01-01T00:20", "s")),
            (np.datetime64("2024-01-01T01:00", "s"), np.datetime64("2024-01-01T01:20", "s")),
        ],
    )
    windows, dropped = window_indices(series, first_scored=4)
    assert [(w.start, w.stop) for w in windows] == [(2, 5)]  # readings 6, 7, 8 of the file
    assert dropped == ["s window from 2024-01-01T00:05:00 (in the probationary period)"]


def test_missing_nab_data_is_one_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["benchmark", "nab", "--data-dir", str(tmp_path), "--quiet"]) == 2
    assert capsys.readouterr().err.startswith("error: NAB data folder not found")


@needs_nab
def test_nab_loads_realknowncause_in_file_order() -> None:
    series = load_nab(DATA_DIR)
    assert len(series) == 7
    assert sum(len(s.windows) for s in series) == 19
    machine = next(s for s in series if s.name == "machine_temperature_system_failure")
    assert (np.diff(machine.timestamps) < np.timedelta64(0)).any()  # kept as NAB scores it


@needs_nab
@pytest.mark.slow
def test_nab_protocol_on_one_series(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config = TrainConfig(epochs=3, patience=2)
    bench = run_nab(DATA_DIR, config, verbose=False, max_series=1)
    figures = bench.figures["autoencoder"]
    (name,) = bench.per_series
    info = bench.per_series[name]
    assert figures.n_windows == info["windows"] == 2
    assert figures.n_alerts == info["autoencoder_alerts"]
    assert 0.0 <= figures.windows_alerted_random <= 1.0
    written = write_nab_report(bench, tmp_path)
    body = json.loads(written["json"].read_text())
    assert set(body["context"]["summary"]) == {"autoencoder", "pca_t2"}
    # Which model each series got, so a change in its alerts can be traced to a choice.
    assert info["model"] == candidate_label(config.family, config.window, "squares", "none")
    assert info["threshold"] > 0
    assert f"| {name} | {info['model']} | {info['threshold']:.4f} |" in (
        written["markdown"].read_text()
    )


def test_the_rule_says_each_model_arrives_smoothed_as_it_declares() -> None:
    text = describe_nab_rule(AlertRule(smoothing="none"))
    assert text.startswith("each model's scores smoothed as it declares")
    assert "no smoothing" not in text and text.endswith("3 of 5 above the threshold, cool-down 10")
    assert describe_nab_rule(AlertRule()) == AlertRule().describe()
