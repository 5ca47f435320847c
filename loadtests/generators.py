"""Drive the two load generators as subprocesses pinned to the client cores.

Both return a :class:`Measurement`: completed requests, elapsed time, errors and latency
percentiles, whichever tool produced them.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.servers import HOST, Pinning

REPLAY_LUA = Path(__file__).with_name("replay.lua")
RESULT_MARKER = "LOADTEST_RESULT "


class GeneratorError(RuntimeError):
    """A load generator is missing, failed, or printed no result."""


@dataclass
class Measurement:
    tool: str
    requests: int
    elapsed_s: float
    errors: int
    latency_ms: dict[str, float]
    error_detail: dict[str, int] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)
    total_requests: int | None = None
    """Requests over every round, where several rounds were merged into one measurement."""

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        attempted = self.total_requests if self.total_requests is not None else self.requests
        attempted += self.error_detail.get("io", 0)
        attempted += self.error_detail.get("unfinished", 0)
        return self.errors / attempted if attempted else 1.0


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise GeneratorError(
            "wrk is not installed: `apt-get install wrk` (Debian/Ubuntu) or see "
            "https://github.com/wg/wrk"
        )
    return path


def run_wrk(
    records_file: Path,
    *,
    port: int,
    duration_s: float,
    connections: int,
    pinning: Pinning,
    threads: int = 1,
) -> Measurement:
    """A closed-loop saturation run: ``connections`` keep-alive connections, each sending its
    next request as soon as the previous one is answered, for ``duration_s`` seconds."""
    wrk = require_wrk()
    seconds = max(1, math.ceil(duration_s))
    command = [
        *pinning.prefix(pinning.client),
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout", "10s",
        "-s", str(REPLAY_LUA),
        f"http://{HOST}:{port}",
        "--",
        str(records_file),
    ]  # fmt: skip
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    line = next(
        (x for x in completed.stdout.splitlines() if x.startswith(RESULT_MARKER)),
        None,
    )
    if completed.returncode != 0 or line is None:
        raise GeneratorError(
            f"wrk failed (exit {completed.returncode}):\n{completed.stdout[-2000:]}"
            f"\n{completed.stderr[-2000:]}"
        )
    raw = json.loads(line[len(RESULT_MARKER) :])
    errors = {name: int(count) for name, count in raw["errors"].items()}
    latency = {name: value / 1000.0 for name, value in raw["latency_us"].items()}
    return Measurement(
        tool="wrk",
        requests=int(raw["requests"]),
        elapsed_s=raw["duration_us"] / 1e6,
        errors=sum(errors.values()),
        latency_ms=latency,
        error_detail=errors,
        extra={"connections": connections, "threads": threads},
    )


def run_open_loop(
    records_file: Path,
    *,
    port: int,
    rate: float,
    duration_s: float,
    pinning: Pinning,
    connections: int = 32,
) -> Measurement:
    """A fixed-rate run with ``loadtests.openloop`` (see its docstring for what it measures)."""
    command = [
        *pinning.prefix(pinning.client),
        sys.executable, "-m", "loadtests.openloop", str(records_file),
        "--host", HOST, "--port", str(port),
        "--rate", str(rate), "--duration", str(duration_s),
        "--connections", str(connections),
    ]  # fmt: skip
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=duration_s + 90,
        check=False,
        cwd=Path(__file__).resolve().parents[1],
    )
    if completed.returncode != 0:
        raise GeneratorError(
            f"open-loop generator failed (exit {completed.returncode}):\n{completed.stderr[-3000:]}"
        )
    raw = json.loads(completed.stdout.strip().splitlines()[-1])
    errors = {name: int(count) for name, count in raw["errors"].items()}
    latency = {name: value / 1000.0 for name, value in raw["latency_us"].items()}
    lag = {name: value / 1000.0 for name, value in raw["dispatch_lag_us"].items()}
    return Measurement(
        tool="open-loop",
        requests=int(raw["completed"]),
        elapsed_s=float(raw["elapsed_s"]),
        errors=sum(errors.values()),
        latency_ms=latency,
        error_detail=errors,
        extra={
            "offered_rate": rate,
            "scheduled": raw["scheduled"],
            "connections": connections,
            "dispatch_lag_ms": lag,
            "error_samples": raw["error_samples"],
        },
    )
