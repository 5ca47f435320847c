"""The TEP protocol. Real-data tests skip when the data folder is absent."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmark_data import DATA_DIR, needs_tep

from models.__main__ import main
from models.benchmarks.common import DETECTORS
from models.benchmarks.tep import (
    LABEL,
    TEP_FAULTS,
    TEP_HARD_FAULTS,
    TEP_REFERENCE_FILE,
    TepBenchmark,
    TepReference,
    mean_over,
    parse_tep_reference,
)
from models.lone_spike import LoneSpikeCheck
from models.train_config import FAMILIES
from service.calibration.evidence import clopper_pearson


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
    reference = parse_tep_reference(path)
    assert reference.per_fault[3]["PCA-T2"] == 3.0 and reference.per_fault[3]["PCA-Q"] == 4.0
    assert reference.per_fault[21]["DAE"] == 25.0
    assert reference.average["DPI-3L"] == 10.0
    # Table III's average false-alarm rates: six columns, PCA's first.
    assert reference.far == {
        "PCA-T2": 3.04, "PCA-Q": 4.20, "ICA-I2": 2.50, "ICA-QI": 4.40, "DPI-2L": 3.45,
        "DPI-3L": 3.99,
    }  # fmt: skip
    del rows[7]
    path.write_text(_reference_text(rows, [0.0] * 11))
    with pytest.raises(ValueError, match=r"missing faults \[7\]"):
        parse_tep_reference(path)


def test_mean_over_excludes_hard_faults() -> None:
    values = {k: float(k) for k in TEP_FAULTS}
    assert mean_over(values) == pytest.approx(11.0)
    kept = [k for k in TEP_FAULTS if k not in TEP_HARD_FAULTS]
    assert mean_over(values, exclude=TEP_HARD_FAULTS) == pytest.approx(np.mean(kept))


@needs_tep
def test_published_reference_parses_to_the_readme_averages() -> None:
    reference = parse_tep_reference(DATA_DIR / "tep" / TEP_REFERENCE_FILE)
    assert reference.average["PCA-T2"] == pytest.approx(39.726)
    assert reference.average["PCA-Q"] == pytest.approx(31.887)
    assert reference.average["DAE"] == pytest.approx(20.476)
    assert reference.far["PCA-T2"] == 3.04 and reference.far["PCA-Q"] == 4.20
    assert mean_over({k: v["PCA-Q"] for k, v in reference.per_fault.items()}) == pytest.approx(
        31.887, abs=0.01
    )


def _bench(limit_scores: np.ndarray, runs: dict[str, np.ndarray], faults: dict[int, np.ndarray]):
    """A benchmark from constructed scores (the same for every detector)."""
    scores = {"limit": limit_scores}
    limits = {q: dict.fromkeys(DETECTORS, float(np.quantile(scores["limit"], q, method="higher")))
              for q in (0.95, 0.99)}  # fmt: skip
    return TepBenchmark(
        detectors=None,  # type: ignore[arg-type]
        limits=limits,
        reference=TepReference({k: {} for k in TEP_FAULTS}, {}, {}),
        limit_scores=dict.fromkeys(DETECTORS, limit_scores),
        run_scores=dict.fromkeys(DETECTORS, runs),
        fault_scores=dict.fromkeys(DETECTORS, faults),
        normal_errors=np.zeros((1, 1)),
        fault_errors=np.zeros((1, 1)),
        seconds=0.0,
        lone_spike=LoneSpikeCheck(8.0, 1, "none", 20, 0, 0, 0, 0, 100, 52),
    )


def test_false_alarms_pool_runs_and_name_the_worst() -> None:
    limit_run = np.arange(100.0)  # 95% limit: 95.0, 99% limit: 99.0
    runs = {"run01": np.array([0.0, 96.0, 1.0, 2.0]), "run02": np.array([97.0, 98.0, 1.0, 100.0])}
    bench = _bench(limit_run, runs, {k: np.array([0.0, 200.0]) for k in TEP_FAULTS})
    assert bench.limits[0.95]["autoencoder"] == 95.0
    counts = bench.far("autoencoder", 0.95)
    assert (counts.fp, counts.tn) == (4, 4)  # 96, 97, 98, 100 of eight readings
    assert bench.run_far("autoencoder", 0.95) == {"run01": 25.0, "run02": 75.0}
    assert bench.worst_run("autoencoder", 0.95) == ("run02", 75.0)
    assert bench.far("autoencoder", 0.99).fp == 1  # only 100 > 99
    low, high = bench.far_interval("autoencoder", 0.95)
    assert low < 50.0 < high
    # Three stretches of false alarms (96 | 97, 98 | 100), not four independent readings:
    # the interval is that of 3 events in 6 effective readings, wider than 4 in 8.
    assert (low, high) == pytest.approx(tuple(100 * v for v in clopper_pearson(3, 6)))
    assert high - low > 100 * (clopper_pearson(4, 8)[1] - clopper_pearson(4, 8)[0])
    # No false alarm at all, and every reading one: the plain intervals' edges.
    quiet = _bench(limit_run, {"run01": np.zeros(4)}, {k: np.array([200.0]) for k in TEP_FAULTS})
    assert quiet.far_interval("autoencoder", 0.95) == pytest.approx(
        tuple(100 * v for v in clopper_pearson(0, 4))
    )
    loud = _bench(
        limit_run, {"run01": np.full(4, 500.0)}, {k: np.array([200.0]) for k in TEP_FAULTS}
    )
    assert loud.far_interval("autoencoder", 0.95)[1] == 100.0


def test_missed_detections_count_readings_at_or_under_the_limit() -> None:
    faults = {k: np.array([95.0, 95.5, 99.0, 120.0]) for k in TEP_FAULTS}
    faults[3] = np.array([0.0, 0.0, 0.0, 0.0])  # a hard fault, missed entirely
    bench = _bench(np.arange(100.0), {"run01": np.zeros(4)}, faults)
    assert bench.mdr("autoencoder", 0.95)[1] == 25.0  # 95.0 is not above 95.0
    assert bench.mdr("autoencoder", 0.99)[1] == 75.0
    assert bench.mdr("autoencoder", 0.95)[3] == 100.0
    assert bench.average("autoencoder", 0.95) == pytest.approx((20 * 25.0 + 100.0) / 21)
    assert bench.average("autoencoder", 0.95, without_hard=True) == pytest.approx(25.0)
    summary = bench.summary()
    assert summary["95%"]["pca_spe"]["worst_run"] == "run01"
    assert summary["99%"]["autoencoder"]["average_mdr"] == pytest.approx((20 * 75.0 + 100.0) / 21)


@needs_tep
@pytest.mark.slow
def test_tep_benchmark_end_to_end(tmp_path: Path) -> None:
    """The real protocol (seconds): limits on all of d00_te, false alarms on the ten normal
    runs, MDR on every fault file, at 95% and 99%."""
    torch.set_num_threads(1)
    out = tmp_path / "tep"
    assert main(["benchmark", "tep", "--out", str(out), "--quiet"]) == 0
    body = json.loads((out / "report.json").read_text())
    for name in ("report.md", "per_fault_mdr.png", "histograms.png", "roc.png"):
        assert (out / name).stat().st_size > 0
    table = body["tables"][0]["rows"]
    faults = table[: len(TEP_FAULTS)]
    ours = [f"{label} {q}" for q in ("95%", "99%") for label in
            ("model (ours)", "PCA-T² (ours)", "PCA-SPE (ours)")]  # fmt: skip
    for row in faults:
        for column in ours:
            assert 0.0 <= row[column] <= 100.0
        for label in ("model (ours)", "PCA-T² (ours)", "PCA-SPE (ours)"):
            assert row[f"{label} 99%"] >= row[f"{label} 95%"]  # a higher limit misses more
    by_fault = {int(row["fault"].rstrip(" *")): row for row in faults}
    # Faults 1, 2, 6, 7 are step changes every published method catches (MDR < 3%).
    for fault in (1, 2, 6, 7):
        assert by_fault[fault]["model (ours) 95%"] < 10.0
        assert by_fault[fault]["PCA-SPE (ours) 95%"] < 10.0
    # Our PCA-SPE is a faithful baseline: within a few points of the published average.
    average = table[len(TEP_FAULTS)]
    assert average["fault"] == "average (21 faults)"
    assert abs(average["PCA-SPE (ours) 95%"] - 31.887) < 5.0
    assert average["PCA-Q (published 95%)"] == pytest.approx(31.887, abs=0.01)
    detectors = {d["detector"]: d for d in body["detectors"]}
    # The model's row is named by its family and window, the baselines by their statistic.
    name = next(iter(detectors))
    assert name.split(" over ")[0] in FAMILIES and " reading" in name
    assert set(detectors) == {name, "pca_t2", "pca_spe"}
    detectors["autoencoder"] = detectors.pop(name)
    window = int(body["context"]["model"].split(" over window ")[1].split(",")[0])
    # the ten normal runs, each scored from its first full window
    assert detectors["autoencoder"]["n_normal"] == 10 * (160 - window + 1)
    assert detectors["autoencoder"]["n_anomalous"] == 21 * (480 - window + 1)
    summary = body["context"]["summary"]
    for name in DETECTORS:
        at95, at99 = summary["95%"][name], summary["99%"][name]
        assert at99["limit"] >= at95["limit"]
        assert at99["pooled_far"] <= at95["pooled_far"]
        assert at95["pooled_far"] <= at95["worst_run_far"]
        assert at95["average_mdr"] == pytest.approx(average[f"{LABEL[name]} 95%"])
    # The PCA limits hold their nominal rate roughly on independent runs (published 3-4%).
    assert summary["95%"]["pca_t2"]["pooled_far"] < 10.0
    acceptance = body["context"]["acceptance"]
    assert acceptance["passed_95"] == (
        acceptance["model_average_mdr_95"] <= 18.0 and acceptance["model_pooled_far_95"] <= 5.0
    )
    spike = body["context"]["lone spike (d00_te, 99% limit)"]
    # d00_te is long enough for every position, and the model's own limit rarely alerts
    assert spike["requested"] == 20 and spike["trials"] >= 10
    assert spike["verdict"] in ("ok", "alerts") and spike["message"].startswith(
        "ok:" if spike["verdict"] == "ok" else "WARNING:"
    )
    far = body["tables"][1]
    assert far["title"].startswith("TEP false alarms on 10 independent normal runs")
    assert len(body["tables"][2]["rows"]) == 2 * len(DETECTORS)
