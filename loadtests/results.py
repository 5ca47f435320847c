"""Scenario results, pass/fail against the performance targets, the table and the JSON file."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class ScenarioResult:
    """One scenario's figures; ``passed`` is None where the scenario has no target."""

    name: str
    description: str
    target: str
    tool: str
    requests: int
    duration_s: float
    requests_per_s: float
    readings_per_request: float
    readings_per_s: float
    latency_ms: dict[str, float]
    error_rate: float
    errors: dict[str, int]
    ratio_vs_empty: float | None = None
    passed: bool | None = None
    verdict: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _fmt(value: float | None, spec: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, spec)


def table(results: Sequence[ScenarioResult]) -> str:
    headers = (
        "scenario",
        "req/s",
        "readings/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "x empty",
        "target",
        "result",
    )
    rows = [
        (
            r.name,
            _fmt(r.requests_per_s, ",.0f"),
            _fmt(r.readings_per_s, ",.0f"),
            _fmt(r.latency_ms.get("p50"), ".2f"),
            _fmt(r.latency_ms.get("p95"), ".2f"),
            _fmt(r.latency_ms.get("p99"), ".2f"),
            f"{r.error_rate:.2%}",
            _fmt(r.ratio_vs_empty, ".2f"),
            r.target,
            "-" if r.passed is None else ("PASS" if r.passed else "FAIL"),
        )
        for r in results
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows, strict=True)]
    numeric = {1, 2, 3, 4, 5, 6, 7}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out.extend(line(row) for row in rows)
    notes = [f"  {r.name}: {r.verdict}" for r in results if r.verdict]
    if notes:
        out.append("")
        out.extend(notes)
    return "\n".join(out)


def write_json(path: Path, results: Sequence[ScenarioResult], meta: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"meta": meta, "results": [asdict(r) for r in results]}
    path.write_text(json.dumps(_finite(payload), indent=2, allow_nan=False) + "\n")


def _finite(value: Any) -> Any:
    """NaN (a percentile of no samples) becomes null: strict JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value
