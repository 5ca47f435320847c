"""Pass/fail rules, the RSS flatness summary, the table and the JSON file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from loadtests.results import ScenarioResult, table, write_json
from loadtests.scenarios import SCENARIOS, Targets
from loadtests.soak import rss_summary

MB = 1024 * 1024
TARGETS = Targets()


def result(name: str, **overrides: Any) -> ScenarioResult:
    fields: dict[str, Any] = {
        "name": name,
        "description": "d",
        "target": "t",
        "tool": "wrk",
        "requests": 1000,
        "duration_s": 1.0,
        "requests_per_s": 1000.0,
        "readings_per_request": 1.0,
        "readings_per_s": 1000.0,
        "latency_ms": {"p50": 1.0, "p95": 2.0, "p99": 3.0},
        "error_rate": 0.0,
        "errors": {},
    }
    fields.update(overrides)
    return ScenarioResult(**fields)


def judge(name: str, **overrides: Any) -> bool | None:
    return SCENARIOS[name].judge(result(name, **overrides), TARGETS)[0]


def test_single_is_judged_against_the_empty_endpoint() -> None:
    assert judge("single", ratio_vs_empty=1.02) is True
    assert judge("single", ratio_vs_empty=0.98) is False
    assert judge("single") is None  # no baseline in the run: no verdict


def test_batch_throughput_targets() -> None:
    assert judge("json-batch", readings_per_s=150_000.0) is True
    assert judge("json-batch", readings_per_s=149_999.0) is False
    assert judge("binary-batch", readings_per_s=1_000_000.0) is True
    assert judge("binary-batch", readings_per_s=999_999.0) is False
    assert judge("binary-batch-npz", readings_per_s=1_000_000.0) is True
    assert judge("binary-batch-npz", readings_per_s=999_999.0) is False


def test_fixed_rate_latency_and_achieved_rate() -> None:
    ok = {"offered_rate": 300.0}
    assert judge("fixed-rate-single", requests_per_s=299.0, extra=ok) is True
    slow = {"p50": 1.0, "p95": 4.0, "p99": 5.1}
    assert judge("fixed-rate-single", requests_per_s=299.0, latency_ms=slow, extra=ok) is False
    # a server that can't keep up with the offered rate fails, whatever its latency
    assert judge("fixed-rate-single", requests_per_s=250.0, extra=ok) is False


def test_batch_tail_is_judged_relative_to_the_median() -> None:
    extra = {"offered_rate": 10.0}
    assert judge("fixed-rate-batch", requests_per_s=10.0, extra=extra) is True  # 3.0 / 1.0
    spiky = {"p50": 1.0, "p95": 2.0, "p99": 3.2}
    assert judge("fixed-rate-batch", requests_per_s=10.0, latency_ms=spiky, extra=extra) is False


def soak_extra(
    samples: list[tuple[float, float]], fill: float = 100.0, **state: Any
) -> dict[str, Any]:
    """RSS samples (seconds, MB); the service scores 10 readings a second."""
    extra = {
        "rss": rss_summary(
            [(t, int(mb * MB), 10.0 * t) for t, mb in samples], warmup_s=10.0, fill_readings=fill
        ),
        "distinct_streams": 100_000,
        "stream_capacity": 20_000,
        "evictions": 5.0,
        "state_bounded": True,
    }
    extra.update(state)
    return extra


def test_rss_summary_uses_the_first_sample_once_warm_and_full() -> None:
    samples = [(0.0, 100, 0.0), (5.0, 180, 50.0), (10.0, 200, 90.0), (20.0, 210, 200.0)]
    samples += [(30.0, 200, 300.0), (40.0, 189, 400.0)]
    summary = rss_summary(
        [(t, mb * MB, n) for t, mb, n in samples], warmup_s=10.0, fill_readings=100
    )
    # at 10 s warm-up is over but only 90 readings were scored: the reference waits for 20 s
    assert summary["filled"] and summary["reference_s"] == 20.0
    assert summary["start_mb"] == 100.0 and summary["reference_mb"] == 210.0
    assert summary["min_mb"] == 189.0 and summary["max_mb"] == 210.0 and summary["end_mb"] == 189.0
    assert math.isclose(summary["max_deviation"], -0.1)
    assert summary["slope_mb_per_min"] < 0
    never = rss_summary([(t, mb * MB, n) for t, mb, n in samples], warmup_s=10.0, fill_readings=1e6)
    assert not never["filled"] and never["reference_s"] == 10.0


def test_soak_passes_flat_memory_and_fails_growth_or_unbounded_state() -> None:
    flat = [(0.0, 300.0), (10.0, 400.0), (20.0, 420.0), (30.0, 395.0)]
    growing = [(0.0, 300.0), (10.0, 400.0), (20.0, 430.0), (30.0, 445.0)]
    assert judge("soak", extra=soak_extra(flat)) is True
    assert judge("soak", extra=soak_extra(growing)) is False
    assert judge("soak", extra=soak_extra(flat, state_bounded=False)) is False
    # memory never judged once the bounded state was full: not a pass
    assert judge("soak", extra=soak_extra(flat, fill=1e6)) is False


def test_table_and_json(tmp_path: Path) -> None:
    results = [
        result("empty", requests_per_s=5000.0),
        result("single", ratio_vs_empty=1.1, passed=True, verdict="1.10x"),
        result("fixed-rate-batch", latency_ms={"p50": float("nan")}, passed=False),
    ]
    text = table(results)
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["scenario", "req/s", "readings/s"]
    assert "PASS" in lines[3] and "1.10" in lines[3]
    assert "FAIL" in lines[4] and " - " in lines[4]  # NaN latency shows as "-"
    assert "single: 1.10x" in text
    path = tmp_path / "out" / "results.json"
    write_json(path, results, {"cores": 2})
    data = json.loads(path.read_text())
    assert data["meta"] == {"cores": 2}
    assert [r["name"] for r in data["results"]] == ["empty", "single", "fixed-rate-batch"]
    assert data["results"][2]["latency_ms"]["p50"] is None
