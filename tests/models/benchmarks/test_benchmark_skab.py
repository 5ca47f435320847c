"""The SKAB protocol. Real-data tests skip when the data folder is absent."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from benchmark_data import DATA_DIR, needs_skab

from models.benchmarks.skab import load_skab, run_skab, skab_table, write_skab_report
from models.selection_rule import candidate_label
from models.train_config import TrainConfig


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
def test_skab_protocol_counts_every_test_row_once(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    files, _ = load_skab(DATA_DIR)
    config = TrainConfig(epochs=3, patience=2)
    variants = run_skab(DATA_DIR, config, verbose=False, max_files=2)
    test_rows = sum(f.readings.n_readings - 400 for f in files[:2])
    anomalies = sum(int(f.labels[400:].sum()) for f in files[:2])
    assert [v.name for v in variants] == [
        "per-file",
        "anomaly-free model",
        "anomaly-free model, own threshold",
    ]
    for variant in variants[:2]:
        assert set(variant.per_file) == set(variant.models) == {"0.csv", "1.csv"}
        for counts in variant.counts.values():
            assert counts.tp + counts.fp + counts.fn + counts.tn == test_rows
            assert counts.tp + counts.fn == anomalies
    # The anomaly-free model with its own threshold is judged on every row of every file.
    every_row = sum(f.readings.n_readings for f in files[:2])
    normal_rows = sum(int((~f.labels).sum()) for f in files[:2])
    for counts in variants[2].counts.values():
        assert counts.tp + counts.fp + counts.fn + counts.tn == every_row
        assert counts.fp + counts.tn == normal_rows
    # Which model scored each file and at which threshold: per file its own; the anomaly-free
    # model one for all, at each file's limit or at its own threshold.
    label = candidate_label(config.family, config.window, "squares", "none")
    assert {m for m, _ in variants[0].models.values()} == {label}
    shared = {m for variant in variants[1:] for m, _ in variant.models.values()}
    assert shared == {label}
    assert len({t for _, t in variants[2].models.values()}) == 1
    assert all(t > 0 for variant in variants for _, t in variant.models.values())
    written = write_skab_report(variants, skab_table(variants, 2), tmp_path, config=config)
    text = written["markdown"].read_text()
    for variant in variants[:2]:
        model, threshold = variant.models["1.csv"]
        assert f"| 1.csv | {model} | {threshold:.4f} |" in text
