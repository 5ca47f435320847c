"""Quick scoring benchmark on 127.0.0.1 (bounded in time): an empty FastAPI endpoint vs
POST /v1/score on the bundled model, one uvicorn worker each, driven by Debian's ``wrk``.

    .venv/bin/python scripts/bench_scoring.py [--duration 6] [--rounds 2] [--model DIR]
        [--redis [--redis-baseline DIR]]

Prints req/s for single readings (and the ratio to the empty endpoint) and readings/s for
1,000-reading JSON batches and float32 bodies. ``--redis`` also serves the same model with
its stream state in Redis (a redis-server on a free loopback port, no persistence) and
measures it in the same rounds, interleaved, with the ratio to the in-process default.
``--redis-baseline DIR`` adds a third service, with Redis state, from another checkout,
so a change is measured against what it replaces in the same rounds. CPU time per reading
of the serving processes (read from /proc) is printed too: on a machine shared with other
work it moves far less than the rates. At the end each service's count of readings let go
by the retained-readings bound is printed, so a run says whether it measured that path. The
load tests under loadtests/ are the reference;
this is the quick check used while developing the hot path.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import orjson
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[1]
EMPTY_APP = """
from fastapi import FastAPI
app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
@app.post("/empty")
async def empty() -> dict[str, str]:
    return {}
"""


def lua(path: Path, body: Path, content_type: str) -> Path:
    path.write_text(
        f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "{content_type}"\n'
        'wrk.headers["X-Stream-Id"] = "bench"\n'
        f'local f = io.open("{body}", "rb"); wrk.body = f:read("*a"); f:close()\n'
    )
    return path


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # fields 14, 15


def measured(
    url: str, script: Path, connections: int, duration: int, pids: list[int]
) -> tuple[float, list[float]]:
    """Requests per second, and CPU seconds per request of each serving process: what a
    request costs, which other work on the machine moves far less than the rate."""
    before = [cpu_seconds(pid) for pid in pids]
    rate = wrk(url, script, connections, duration)
    spent = [cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)]
    return rate, [cpu / (rate * duration) for cpu in spent]


def wrk(url: str, script: Path, connections: int, duration: int) -> float:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
        timeout=duration + 30,
    ).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if match is None or errors is not None:
        raise RuntimeError(f"wrk run failed:\n{out}")
    return float(match.group(1))


def wait_up(url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=6, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument(
        "--model",
        type=Path,
        default=REPO / "models/synthetic-plant/2",
        help="artifact folder to serve (default: the bundled model); readings are drawn "
        "around its training mean",
    )
    parser.add_argument(
        "--connections", type=int, default=8, help="wrk connections for single readings"
    )
    parser.add_argument(
        "--redis",
        action="store_true",
        help="also measure a service keeping its stream state in Redis (needs redis-server)",
    )
    parser.add_argument(
        "--redis-baseline",
        type=Path,
        metavar="DIR",
        help="with --redis, also serve with Redis state the service in DIR, another checkout "
        "(git worktree add DIR COMMIT), to compare a change in the same rounds",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
        return 2
    redis_server = shutil.which("redis-server")
    if args.redis and redis_server is None:
        print("redis-server is not installed (apt-get install -y redis-server)", file=sys.stderr)
        return 2
    python = sys.executable
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "empty_app.py").write_text(EMPTY_APP)
        served = tmp / "models" / args.model.parent.name / args.model.name
        shutil.copytree(args.model, served)
        sensors = orjson.loads((served / "manifest.json").read_bytes())
        n = len(sensors["sensors"])
        rng = np.random.default_rng(0)
        mean = np.array(sensors["scaler"]["mean"])
        scale = np.array(sensors["scaler"]["scale"])
        rows = mean + scale * rng.normal(scale=0.3, size=(1000, n))
        (tmp / "single.json").write_bytes(
            orjson.dumps({"stream_id": "bench", "reading": rows[0].round(3).tolist()})
        )
        (tmp / "batch.json").write_bytes(
            orjson.dumps({"stream_id": "bench", "readings": rows.round(3).tolist()})
        )
        (tmp / "batch.f32").write_bytes(rows.astype("<f4").tobytes())
        single = lua(tmp / "single.lua", tmp / "single.json", "application/json")
        batch = lua(tmp / "batch.lua", tmp / "batch.json", "application/json")
        f32 = lua(tmp / "f32.lua", tmp / "batch.f32", "application/octet-stream")
        env_service = {
            "ANOMALY_STORE_PATH": str(tmp / "store.sqlite3"),
            "ANOMALY_MODELS_DIR": str(tmp / "models"),
            "ANOMALY_RECALIBRATION_ENABLED": "false",
            "PATH": "/usr/bin:/bin",
        }
        uvicorn = [python, "-m", "uvicorn", "--no-access-log", "--log-level", "warning"]
        # Free ports, so that two runs on one machine never measure each other's servers.
        empty_port, service_port, redis_service_port = free_port(), free_port(), free_port()
        empty = subprocess.Popen(
            [*uvicorn, "--app-dir", str(tmp), "empty_app:app", "--port", str(empty_port)],
            cwd=REPO,
        )
        service = subprocess.Popen(
            [python, "-m", "service", "--port", str(service_port)], cwd=REPO, env=env_service
        )
        processes = [empty, service]
        targets = {"in-process": f"http://127.0.0.1:{service_port}/v1/score"}
        serving = {"in-process": [service.pid]}  # whose CPU time a request costs
        if args.redis and redis_server is not None:
            port = free_port()
            processes.append(
                subprocess.Popen(
                    [
                        redis_server,
                        "--port",
                        str(port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(tmp),
                    ],
                    stdout=subprocess.DEVNULL,
                )  # fmt: skip
            )
            env_redis = {
                **env_service,
                "ANOMALY_STORE_PATH": str(tmp / "store-redis.sqlite3"),
                "ANOMALY_REDIS_URL": f"redis://127.0.0.1:{port}/0",
                # Bounds Redis's memory over many rounds; a TTL's length costs nothing.
                "ANOMALY_RECENT_RETENTION_S": "300",
            }
            processes.append(
                subprocess.Popen(
                    [python, "-m", "service", "--port", str(redis_service_port)],
                    cwd=REPO,
                    env=env_redis,
                )
            )
            targets["redis"] = f"http://127.0.0.1:{redis_service_port}/v1/score"
            redis_pid = processes[-2].pid
            serving["redis"] = [processes[-1].pid, redis_pid]  # with redis-server
            if args.redis_baseline is not None:
                baseline_port = free_port()
                processes.append(
                    subprocess.Popen(
                        [python, "-m", "service", "--port", str(baseline_port)],
                        cwd=args.redis_baseline.resolve(),  # imports that checkout's service
                        env=env_redis
                        | {
                            "ANOMALY_STORE_PATH": str(tmp / "store-baseline.sqlite3"),
                            "ANOMALY_REDIS_URL": f"redis://127.0.0.1:{port}/1",
                        },
                    )
                )
                targets["redis-baseline"] = f"http://127.0.0.1:{baseline_port}/v1/score"
                serving["redis-baseline"] = [processes[-1].pid, redis_pid]
        try:
            empty_url = f"http://127.0.0.1:{empty_port}"
            wait_up(f"{empty_url}/docs")
            for url in targets.values():
                wait_up(url.replace("/v1/score", "/readyz"))
            ratios_by_round: dict[str, list[list[float]]] = {}
            cost_ratios_by_round: dict[str, list[list[float]]] = {}
            for round_ in range(1, args.rounds + 1):
                base = wrk(f"{empty_url}/empty", single, 8, args.duration)
                load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
                print(f"round {round_}: empty {base:,.0f} req/s (load average {load})")
                # Each kind of request on every service back to back, each first in turn,
                # so load from elsewhere on the machine hits them alike.
                shift = round_ % len(targets)
                names = list(targets)[shift:] + list(targets)[:shift]
                runs: dict[str, list[float]] = {name: [] for name in targets}
                costs: dict[str, list[float]] = {name: [] for name in targets}
                parts: dict[str, list[str]] = {name: [] for name in targets}
                for script, connections, per_request in (
                    (single, args.connections, 1),
                    (batch, 2, 1000),
                    (f32, 2, 1000),
                ):
                    for name in names:
                        rate, cpu = measured(
                            targets[name], script, connections, args.duration, serving[name]
                        )
                        runs[name].append(rate * per_request)
                        costs[name].append(sum(cpu) / per_request * 1e6)
                        parts[name].append(" + ".join(f"{c / per_request * 1e6:.2f}" for c in cpu))
                figures = {name: (r[0], r[1], r[2]) for name, r in runs.items()}
                for name in targets:
                    one, json_batch, binary = figures[name]
                    print(
                        f"  {name}: single {one:,.0f} req/s ({one / base:.2f}x empty) | "
                        f"JSON 1k batches {json_batch:,.0f} readings/s | "
                        f"float32 1k batches {binary:,.0f} readings/s"
                    )
                    print(
                        "    CPU per reading, µs{}: single {} | JSON batches {} | "
                        "float32 batches {}".format(
                            " (service + redis-server)" if len(serving[name]) > 1 else "",
                            *parts[name],
                        )
                    )
                for name in targets:
                    if name == "in-process":
                        continue
                    ratios = [
                        r / i for r, i in zip(figures[name], figures["in-process"], strict=True)
                    ]
                    cost_ratios = [
                        i / r for r, i in zip(costs[name], costs["in-process"], strict=True)
                    ]
                    ratios_by_round.setdefault(name, []).append(ratios)
                    cost_ratios_by_round.setdefault(name, []).append(cost_ratios)
                    print(
                        f"  {name} / in-process: single {{:.2f}}x | JSON batches {{:.2f}}x | "
                        "float32 batches {:.2f}x".format(*ratios)
                    )
            for name, by_round in ratios_by_round.items():
                medians = np.median(np.array(by_round), axis=0)
                print(
                    "median {} / in-process over {} rounds: single {:.2f}x | JSON batches "
                    "{:.2f}x | float32 batches {:.2f}x".format(name, len(by_round), *medians)
                )
                medians = np.median(np.array(cost_ratios_by_round[name]), axis=0)
                print(
                    f"median in-process / {name} CPU per reading (the rate ratio on cores of "
                    "their own, Redis on the same ones): single {:.2f}x | JSON batches {:.2f}x "
                    "| float32 batches {:.2f}x".format(*medians)
                )
            for name, url in targets.items():
                # Whether the retained-readings bound let readings go during the rounds, so a
                # comparison says which path it measured.
                print(f"{name}: {dropped(url.replace('/v1/score', '/metrics'))}")
        finally:
            for process in processes:
                process.terminate()
                process.wait(timeout=30)
    return 0


def dropped(metrics_url: str) -> str:
    text = httpx.get(metrics_url, timeout=10).text
    counts = {
        sample.labels.get("store", "?"): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "anomaly_recent_readings_dropped"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    if not counts:
        return "no dropped-readings counter (a checkout before it)"
    return "readings let go before their retention: " + ", ".join(
        f"{store} {value:,.0f}" for store, value in sorted(counts.items())
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


if __name__ == "__main__":
    raise SystemExit(main())
