"""The scenarios and their pass/fail targets (from the performance issue).

Each scenario names the server it loads, the generator that drives it, the request cycle
it replays (built from the model's sensors) and the rule that judges its result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from loadtests import api
from loadtests.payloads import SensorSpace
from loadtests.results import ScenarioResult
from loadtests.servers import REPO_ROOT
from loadtests.wire import RequestTemplate

SEED = 20_260_601
DISTINCT_SINGLE = 64
DISTINCT_BATCHES = 4
MIXED_SCORES_PER_FEEDBACK = 9
MIXED_GROUPS = 4
MIXED_LABEL_LAG_GROUPS = 10
MIXED_LABEL_BACKREF = (
    MIXED_LABEL_LAG_GROUPS * (MIXED_SCORES_PER_FEEDBACK + 1) + MIXED_SCORES_PER_FEEDBACK
)


@dataclass(frozen=True)
class Targets:
    """The issue's targets; every ratio is measured side by side in one run."""

    single_vs_empty: float = 1.0
    json_batch_readings_per_s: float = 150_000.0
    binary_readings_per_s: float = 1_000_000.0
    fixed_rate_p99_ms: float = 5.0
    batch_p99_over_p50: float = 3.0
    rss_tolerance: float = 0.10


Judge = Callable[[ScenarioResult, Targets], tuple[bool | None, str]]
Builder = Callable[[SensorSpace, "RunConfig", str], list[RequestTemplate]]  # defined below


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    server: Literal["floor", "empty", "service", "soak"]
    generator: Literal["wrk", "open-loop"]
    build: Builder
    judge: Judge
    target_text: Callable[[Targets], str]
    connections: int
    streams: Literal["single", "soak"] = "single"
    rate: float = 0.0
    phase: Literal["saturation", "fixed-rate", "batch-rate", "soak"] = "saturation"
    probe_count: int = 10

    def n_streams(self, config: RunConfig) -> int:
        return config.soak_streams if self.streams == "soak" else config.single_streams

    def duration(self, config: RunConfig) -> float:
        return {
            "saturation": config.saturation_s,
            "fixed-rate": config.fixed_rate_s,
            "batch-rate": config.batch_rate_s,
            "soak": config.soak_s,
        }[self.phase]


def _rng(salt: int) -> np.random.Generator:
    return np.random.default_rng([SEED, salt])


def _single(space: SensorSpace, config: RunConfig, key: str) -> list[RequestTemplate]:
    readings = space.readings(DISTINCT_SINGLE, _rng(1))
    return [api.single_request(space, reading) for reading in readings]


def _soak(space: SensorSpace, config: RunConfig, key: str) -> list[RequestTemplate]:
    """Single readings; for a model over a window, a window's worth in each request. The soak
    comes back to a stream only after the state has evicted it, so a single reading would
    only ever warm it up again and the model would never score: each request now warms its
    stream up and scores its last reading."""
    if space.window <= 1:
        return _single(space, config, key)
    rng = _rng(6)
    return [
        api.json_batch_request(space, space.readings(space.window, rng))
        for _ in range(DISTINCT_SINGLE)
    ]


def _empty(space: SensorSpace, config: RunConfig, key: str) -> list[RequestTemplate]:
    """The single-reading requests, byte for byte, sent to the empty endpoint."""
    return [api.to_empty_endpoint(t) for t in _single(space, config, key)]


def _floor(space: SensorSpace, config: RunConfig, key: str) -> list[RequestTemplate]:
    return [api.to_floor(t) for t in _single(space, config, key)]


def _json_batches(space: SensorSpace, config: RunConfig, key: str) -> list[RequestTemplate]:
    rng = _rng(2)
    return [
        api.json_batch_request(space, space.readings(config.json_batch, rng))
        for _ in range(DISTINCT_BATCHES)
    ]


def _binary(space: SensorSpace, config: RunConfig, *, npz_reply: bool) -> list[RequestTemplate]:
    rng = _rng(3)  # the same batches whichever reply is asked for
    return [
        api.binary_batch_request(
            space, space.readings(config.binary_batch, rng), npz_reply=npz_reply
        )
        for _ in range(DISTINCT_BATCHES)
    ]


def _binary_batches(space: SensorSpace, config: RunConfig, key: str) -> list[RequestTemplate]:
    return _binary(space, config, npz_reply=False)


def _binary_batches_npz(space: SensorSpace, config: RunConfig, key: str) -> list[RequestTemplate]:
    return _binary(space, config, npz_reply=True)


def _mixed(space: SensorSpace, config: RunConfig, key: str) -> list[RequestTemplate]:
    """Groups of nine single readings with client ids and one operator label, which confirms
    as normal the first reading of the group ten groups back (long answered, even with
    every connection busy)."""
    readings = space.readings(MIXED_SCORES_PER_FEEDBACK * MIXED_GROUPS, _rng(4))
    cycle: list[RequestTemplate] = []
    for start in range(0, len(readings), MIXED_SCORES_PER_FEEDBACK):
        chunk = readings[start : start + MIXED_SCORES_PER_FEEDBACK]
        cycle.extend(api.single_request(space, r, with_reading_id=True) for r in chunk)
        cycle.append(api.feedback_request(key, backref=MIXED_LABEL_BACKREF))
    return cycle


def _no_target(result: ScenarioResult, targets: Targets) -> tuple[bool | None, str]:
    return None, ""


def _judge_clean(result: ScenarioResult, targets: Targets) -> tuple[bool | None, str]:
    """No target but correctness: any error fails the scenario (see ``runner.finish``)."""
    return True, ""


def _judge_single(result: ScenarioResult, targets: Targets) -> tuple[bool | None, str]:
    if result.ratio_vs_empty is None:
        return None, "no empty-endpoint baseline in this run"
    ok = result.ratio_vs_empty >= targets.single_vs_empty
    return ok, f"{result.ratio_vs_empty:.2f}x the empty endpoint's req/s"


def _judge_json(result: ScenarioResult, targets: Targets) -> tuple[bool | None, str]:
    return result.readings_per_s >= targets.json_batch_readings_per_s, ""


def _judge_binary(result: ScenarioResult, targets: Targets) -> tuple[bool | None, str]:
    return result.readings_per_s >= targets.binary_readings_per_s, ""


def _judge_fixed_rate(result: ScenarioResult, targets: Targets) -> tuple[bool | None, str]:
    offered = float(result.extra.get("offered_rate", 0.0))
    achieved = result.requests_per_s
    if offered and achieved < 0.95 * offered:
        return False, f"achieved {achieved:.0f} req/s of the {offered:.0f} offered"
    return result.latency_ms["p99"] <= targets.fixed_rate_p99_ms, ""


def _judge_batch_rate(result: ScenarioResult, targets: Targets) -> tuple[bool | None, str]:
    offered = float(result.extra.get("offered_rate", 0.0))
    if offered and result.requests_per_s < 0.95 * offered:
        return False, f"achieved {result.requests_per_s:.1f} batches/s of the {offered:.0f} offered"
    ratio = result.latency_ms["p99"] / result.latency_ms["p50"]
    return ratio <= targets.batch_p99_over_p50, f"p99/p50 = {ratio:.2f}"


def _judge_soak(result: ScenarioResult, targets: Targets) -> tuple[bool | None, str]:
    rss = result.extra["rss"]
    deviation = float(rss["max_deviation"])
    verdict = (
        f"RSS {rss['start_mb']:.0f} MB at start, {rss['reference_mb']:.0f} MB at "
        f"{rss['reference_s']:.0f} s once warm, {rss['min_mb']:.0f}-{rss['max_mb']:.0f} MB "
        f"after ({deviation:+.1%} worst, {rss['slope_mb_per_min']:+.1f} MB/min); "
        f"{result.extra['distinct_streams']:,} streams through a capacity of "
        f"{result.extra['stream_capacity']:,}, {result.extra['evictions']:,.0f} evictions"
    )
    if not rss["filled"]:
        verdict += (
            f"; inconclusive: fewer than {rss['fill_readings']:,.0f} readings scored, so the "
            "bounded state was still filling (run a longer soak)"
        )
    ok = (
        rss["filled"]
        and abs(deviation) <= targets.rss_tolerance
        and bool(result.extra["state_bounded"])
    )
    return ok, verdict


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            name="empty",
            description="empty async FastAPI endpoint, single-reading bodies (the baseline)",
            server="empty",
            generator="wrk",
            build=_empty,
            judge=_no_target,
            target_text=lambda t: "baseline",
            connections=16,
        ),
        Scenario(
            name="raw-asgi",
            description="bare ASGI app under the same uvicorn, single-reading bodies (the floor)",
            server="floor",
            generator="wrk",
            build=_floor,
            judge=_no_target,
            target_text=lambda t: "floor",
            connections=16,
        ),
        Scenario(
            name="single",
            description="one reading per request, full scoring path",
            server="service",
            generator="wrk",
            build=_single,
            judge=_judge_single,
            target_text=lambda t: f">= {t.single_vs_empty:.1f}x empty",
            connections=16,
        ),
        Scenario(
            name="json-batch",
            description="JSON batches of 1,000 readings",
            server="service",
            generator="wrk",
            build=_json_batches,
            judge=_judge_json,
            target_text=lambda t: f">= {t.json_batch_readings_per_s:,.0f} readings/s",
            connections=4,
        ),
        Scenario(
            name="binary-batch",
            description="binary float32 batches",
            server="service",
            generator="wrk",
            build=_binary_batches,
            judge=_judge_binary,
            target_text=lambda t: f">= {t.binary_readings_per_s:,.0f} readings/s",
            connections=4,
        ),
        Scenario(
            name="binary-batch-npz",
            description="binary float32 batches, replies as .npz",
            server="service",
            generator="wrk",
            build=_binary_batches_npz,
            judge=_judge_binary,
            target_text=lambda t: f">= {t.binary_readings_per_s:,.0f} readings/s",
            connections=4,
        ),
        Scenario(
            name="mixed",
            description="single readings with client ids, 1 feedback label per 9 scores",
            server="service",
            generator="wrk",
            build=_mixed,
            judge=_judge_clean,
            target_text=lambda t: "no errors",
            connections=16,
            probe_count=MIXED_LABEL_BACKREF + 2 * (MIXED_SCORES_PER_FEEDBACK + 1),
        ),
        Scenario(
            name="fixed-rate-single",
            description="300 single-reading requests/s, open loop",
            server="service",
            generator="open-loop",
            build=_single,
            judge=_judge_fixed_rate,
            target_text=lambda t: f"p99 <= {t.fixed_rate_p99_ms:g} ms",
            connections=32,
            rate=300.0,
            phase="fixed-rate",
        ),
        Scenario(
            name="fixed-rate-batch",
            description="10 JSON batches of 1,000 readings/s, open loop",
            server="service",
            generator="open-loop",
            build=_json_batches,
            judge=_judge_batch_rate,
            target_text=lambda t: f"p99 <= {t.batch_p99_over_p50:g}x p50",
            connections=8,
            rate=10.0,
            phase="batch-rate",
        ),
        Scenario(
            name="soak",
            description="single readings (a windowed model's window of them a request) over "
            "100,000 distinct streams, RSS sampled",
            server="soak",
            generator="wrk",
            build=_soak,
            judge=_judge_soak,
            target_text=lambda t: f"RSS within +/-{t.rss_tolerance:.0%}",
            connections=16,
            streams="soak",
            phase="soak",
        ),
    )
}


@dataclass(frozen=True)
class RunConfig:
    """What to run and for how long; every phase is bounded in time."""

    scenarios: tuple[str, ...] = tuple(SCENARIOS)
    saturation_s: float = 15.0
    fixed_rate_s: float = 30.0
    batch_rate_s: float = 60.0
    soak_s: float = 600.0
    warmup_s: float = 2.0
    rounds: int = 3
    models_dir: Path = REPO_ROOT / "models"
    model: str | None = None
    pin: bool = True
    json_batch: int = 1000
    binary_batch: int = 10_000
    single_streams: int = 1000
    soak_streams: int = 100_000
    soak_capacity: int = 20_000
    rss_warmup_fraction: float = 0.2
    targets: Targets = field(default_factory=Targets)

    def with_duration(self, seconds: float) -> RunConfig:
        """Every phase but the soak lasts ``seconds`` (a quick run)."""
        return replace(self, saturation_s=seconds, fixed_rate_s=seconds, batch_rate_s=seconds)
