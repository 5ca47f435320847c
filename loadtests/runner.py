"""Run the scenarios: start the servers, check responses, drive the load, judge the targets."""

from __future__ import annotations

import json
import secrets
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx
import numpy as np

from loadtests import api
from loadtests.generators import Measurement, require_wrk, run_open_loop, run_wrk
from loadtests.payloads import SensorSpace, find_manifest
from loadtests.results import ScenarioResult
from loadtests.scenarios import SCENARIOS, RunConfig, Scenario
from loadtests.servers import (
    BASELINE_FACTORY,
    FLOOR_FACTORY,
    HOST,
    SERVICE_FACTORY,
    Pinning,
    Server,
)
from loadtests.soak import rss_summary, soak_fill_readings
from loadtests.wire import RequestTemplate, render, request_stream, write_records


@dataclass
class Context:
    """What scenarios share during one run."""

    config: RunConfig
    space: SensorSpace
    pinning: Pinning
    work_dir: Path
    api_key: str
    servers: dict[str, Server] = field(default_factory=dict)
    results: dict[str, ScenarioResult] = field(default_factory=dict)
    log: Callable[[str], None] = print

    def service_env(self, **overrides: str) -> dict[str, str]:
        keys = [{"name": "loadtest", "scopes": ["score", "feedback"], "key": self.api_key}]
        env = {
            "ANOMALY_MODELS_DIR": str(self.config.models_dir),
            "ANOMALY_ENV": "production",
            "ANOMALY_API_KEYS": json.dumps(keys),
            # Production closes scoring by default; the scenarios measure the open scoring
            # path their run history was taken on, so they open it explicitly.
            "ANOMALY_REQUIRE_SCORE_KEY": "false",
            "ANOMALY_STORE_PATH": str(self.work_dir / "feedback.sqlite3"),
        }
        env.update(overrides)
        return env


def run(config: RunConfig, *, log: Callable[[str], None] = print) -> list[ScenarioResult]:
    """Run the selected scenarios in order; servers are stopped whatever happens."""
    unknown = [name for name in config.scenarios if name not in SCENARIOS]
    if unknown:
        raise ValueError(f"unknown scenarios {unknown}; choose from {list(SCENARIOS)}")
    selected = [SCENARIOS[name] for name in SCENARIOS if name in config.scenarios]
    if any(s.generator == "wrk" for s in selected):
        require_wrk()
    space = SensorSpace.from_manifest(find_manifest(config.models_dir, config.model))
    with tempfile.TemporaryDirectory(prefix="loadtest-") as tmp:
        ctx = Context(
            config=config,
            space=space,
            pinning=Pinning.choose(config.pin),
            work_dir=Path(tmp),
            api_key=secrets.token_urlsafe(32),
            log=log,
        )
        log(f"model {space.model} v{space.version}: {space.n_sensors} sensors")
        log(f"pinning: {ctx.pinning.describe()}")
        try:
            paired = [s for s in selected if s.name in PAIRED]
            if len(paired) == len(PAIRED):
                for result in run_paired(ctx, paired):
                    ctx.results[result.name] = result
            for scenario in selected:
                if scenario.name not in ctx.results:
                    ctx.results[scenario.name] = run_scenario(ctx, scenario)
        finally:
            for server in ctx.servers.values():
                server.stop()
        return [ctx.results[s.name] for s in selected]


PAIRED = ("empty", "single")


def server_for(ctx: Context, which: str) -> Server:
    """The shared baseline or service server, started on first use; the soak gets its own."""
    if which in ctx.servers:
        return ctx.servers[which]
    env: dict[str, str] = {}
    if which == "empty":
        factory, ready = BASELINE_FACTORY, ("POST", api.EMPTY_PATH)
    elif which == "floor":
        factory, ready = FLOOR_FACTORY, ("POST", api.EMPTY_PATH)
    elif which == "service":
        factory, ready, env = SERVICE_FACTORY, ("GET", api.READY_PATH), ctx.service_env()
    elif which == "soak":
        factory, ready = SERVICE_FACTORY, ("GET", api.READY_PATH)
        env = ctx.service_env(
            ANOMALY_STREAM_CAPACITY=str(ctx.config.soak_capacity),
            ANOMALY_STORE_PATH=str(ctx.work_dir / "soak-feedback.sqlite3"),
        )
    else:
        raise ValueError(f"unknown server {which!r}")
    server = Server(
        which, factory, ready_check=ready, pinning=ctx.pinning, log_dir=ctx.work_dir, env=env
    )
    ctx.log(f"starting the {which} server on {HOST}:{server.port}")
    server.start()
    ctx.servers[which] = server
    if which in ("service", "soak"):
        api.check_model(server.base_url, ctx.space)
    return server


@dataclass
class Prepared:
    """A scenario whose server is up and whose requests were checked."""

    scenario: Scenario
    server: Server
    templates: list[RequestTemplate]
    n_streams: int
    readings_per_request: float
    runs: int = 0

    def records_file(self, ctx: Context) -> Path:
        """A fresh records file for one generator run (its own run tag, so ids are new)."""
        self.runs += 1
        path = ctx.work_dir / f"{self.scenario.name}-{self.runs}.records"
        records = render(self.templates, HOST, self.server.port, run_tag=new_run_tag())
        write_records(path, records, n_streams=self.n_streams)
        return path


def new_run_tag() -> str:
    return secrets.token_hex(5)


def prepare(ctx: Context, scenario: Scenario) -> Prepared:
    """Start the server, prime its streams, check the answers to a cycle of requests, warm
    up."""
    server = server_for(ctx, scenario.server)
    templates = scenario.build(ctx.space, ctx.config, ctx.api_key)
    prepared = Prepared(
        scenario=scenario,
        server=server,
        templates=templates,
        n_streams=scenario.n_streams(ctx.config),
        readings_per_request=sum(t.readings for t in templates) / len(templates),
    )
    if scenario.server == "service":
        prime_streams(prepared, ctx.space)
    probe(prepared, ctx.space)
    if scenario.generator == "wrk" and scenario.phase != "soak" and ctx.config.warmup_s > 0:
        saturate(ctx, prepared, ctx.config.warmup_s)
    return prepared


def prime_streams(prepared: Prepared, space: SensorSpace) -> None:
    """Give every stream of the cycle the ``window - 1`` readings a windowed model needs
    before it scores, so that what is measured is scoring (a warming-up reply skips the
    model) and a label always names a scored reading (one that warmed a stream up cannot be
    labelled). Nothing to do for a model over one reading."""
    if space.window <= 1:
        return
    rng = np.random.default_rng(5)
    with httpx.Client(base_url=prepared.server.base_url, timeout=30.0) as client:
        for stream in range(prepared.n_streams):
            body = {
                "stream_id": f"{api.STREAM_PREFIX}{stream:010d}",
                "readings": space.readings(space.window - 1, rng).tolist(),
            }
            response = client.post(api.SCORE_PATH, json=body)
            if response.status_code != 200:
                raise api.ResponseMismatch(
                    f"priming stream {stream} answered {response.status_code}: "
                    f"{response.text[:500]}"
                )


def probe(prepared: Prepared, space: SensorSpace) -> None:
    """Send the first ``probe_count`` requests of the cycle in order and check every answer."""
    records = render(prepared.templates, HOST, prepared.server.port, run_tag=new_run_tag())
    sends = request_stream(records, prepared.n_streams)
    with httpx.Client(base_url=prepared.server.base_url, timeout=30.0) as client:
        for _ in range(prepared.scenario.probe_count):
            index, raw = next(sends)
            head, _, body = raw.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, target, _ = lines[0].split(" ", 2)
            headers = dict(line.split(": ", 1) for line in lines[1:])
            for hop in ("Host", "Content-Length"):
                headers.pop(hop, None)
            response = client.request(method, target, content=body, headers=headers)
            api.check_response(prepared.templates[index], body, response, space)


def run_scenario(ctx: Context, scenario: Scenario) -> ScenarioResult:
    prepared = prepare(ctx, scenario)
    ctx.log(f"running {scenario.name}: {scenario.description}")
    counts_before = server_statuses(prepared.server)
    if scenario.phase == "soak":
        measurement = run_soak(ctx, prepared)
    elif scenario.generator == "wrk":
        measurement = saturate(ctx, prepared, scenario.duration(ctx.config))
    else:
        measurement = run_open_loop(
            prepared.records_file(ctx),
            port=prepared.server.port,
            rate=scenario.rate,
            duration_s=scenario.duration(ctx.config),
            pinning=ctx.pinning,
            connections=scenario.connections,
        )
    counts_after = server_statuses(prepared.server)
    if counts_before is not None and counts_after is not None:
        statuses = {
            key: count - counts_before.get(key, 0.0)
            for key, count in counts_after.items()
            if count > counts_before.get(key, 0.0)
        }
        measurement.extra["server_statuses"] = statuses
        if any(key.rsplit(" ", 1)[-1].startswith("5") for key in statuses):
            measurement.extra["server_log_tail"] = prepared.server.log_tail(6000)
    return finish(ctx, prepared, measurement)


def server_statuses(server: Server) -> dict[str, float] | None:
    """The service's own count of answers by endpoint and status (None for the baseline)."""
    if server.name in ("empty", "floor"):
        return None
    return api.status_counts(server.base_url)


def saturate(ctx: Context, prepared: Prepared, seconds: float) -> Measurement:
    return run_wrk(
        prepared.records_file(ctx),
        port=prepared.server.port,
        duration_s=seconds,
        connections=prepared.scenario.connections,
        pinning=ctx.pinning,
    )


def run_paired(ctx: Context, scenarios: Sequence[Scenario]) -> list[ScenarioResult]:
    """The empty endpoint and the single-reading scenario alternate in rounds, so that other
    load on the machine hits both alike; each reports its median round."""
    prepared = [prepare(ctx, s) for s in scenarios]
    rounds = max(1, ctx.config.rounds)
    seconds = max(1.0, ctx.config.saturation_s / rounds)
    runs: dict[str, list[Measurement]] = {p.scenario.name: [] for p in prepared}
    for index in range(rounds):
        for p in prepared:
            ctx.log(
                f"running {p.scenario.name} (round {index + 1}/{rounds}): {p.scenario.description}"
            )
            runs[p.scenario.name].append(saturate(ctx, p, seconds))
    results = []
    for p in prepared:
        results.append(finish(ctx, p, median_round(runs[p.scenario.name])))
        ctx.results[p.scenario.name] = results[-1]
    return results


def median_round(measurements: Sequence[Measurement]) -> Measurement:
    """The round with the median req/s, with errors and requests counted over every round."""
    chosen = sorted(measurements, key=lambda m: m.requests_per_s)[len(measurements) // 2]
    detail: dict[str, int] = {}
    for m in measurements:
        for name, count in m.error_detail.items():
            detail[name] = detail.get(name, 0) + count
    return replace(
        chosen,
        errors=sum(m.errors for m in measurements),
        error_detail=detail,
        total_requests=sum(m.requests for m in measurements),
        extra={**chosen.extra, "rounds_req_per_s": [round(m.requests_per_s) for m in measurements]},
    )


def run_soak(ctx: Context, prepared: Prepared) -> Measurement:
    """Saturate the soak server over many distinct streams while sampling its RSS and the
    readings it has scored (to tell when its bounded state is full)."""
    config = ctx.config
    server = prepared.server
    interval = max(0.25, config.soak_s / 300)
    samples: list[tuple[float, int, float]] = []
    began = time.monotonic()

    def take() -> None:
        scored = api.readings_scored(server.base_url)
        samples.append((time.monotonic() - began, server.rss_bytes(), scored))

    take()
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            take()

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        measurement = saturate(ctx, prepared, config.soak_s)
    finally:
        stop.set()
        sampler.join()
    take()
    state = api.stream_state(server.base_url)
    fill = soak_fill_readings(config)
    measurement.extra.update(
        rss=rss_summary(samples, config.soak_s * config.rss_warmup_fraction, fill),
        distinct_streams=config.soak_streams,
        stream_capacity=config.soak_capacity,
        active_streams=state.active,
        evictions=state.evictions,
        state_bounded=state.active <= config.soak_capacity
        and (measurement.requests <= config.soak_capacity or state.evictions > 0),
    )
    return measurement


def finish(ctx: Context, prepared: Prepared, measurement: Measurement) -> ScenarioResult:
    prepared.server.check_alive()
    scenario = prepared.scenario
    result = ScenarioResult(
        name=scenario.name,
        description=scenario.description,
        target=scenario.target_text(ctx.config.targets),
        tool=measurement.tool,
        requests=measurement.requests,
        duration_s=measurement.elapsed_s,
        requests_per_s=measurement.requests_per_s,
        readings_per_request=prepared.readings_per_request,
        readings_per_s=measurement.requests_per_s * prepared.readings_per_request,
        latency_ms=measurement.latency_ms,
        error_rate=measurement.error_rate,
        errors=measurement.error_detail,
        extra=dict(measurement.extra),
    )
    baseline = ctx.results.get("empty")
    if scenario.name != "empty" and baseline is not None and baseline.requests_per_s > 0:
        result.ratio_vs_empty = result.requests_per_s / baseline.requests_per_s
    result.passed, result.verdict = scenario.judge(result, ctx.config.targets)
    if measurement.errors:
        result.passed = False
        result.verdict = "; ".join(
            x
            for x in (f"{measurement.errors} errors {measurement.error_detail}", result.verdict)
            if x
        )
    return result
