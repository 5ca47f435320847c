"""CPU time per POST /v1/score in this process, without sockets: two or more source trees
(git worktrees of different commits) side by side, in alternating rounds.

    .venv/bin/python scripts/bench_inprocess.py --tree /tmp/ab-base --tree . \
        [--rounds 7] [--singles 2000] [--batches 200] [--batch-size 100]

Each tree is served by its own worker process (its ``service`` package first on the path,
this venv's libraries): ``create_app`` with the bundled model on its embedded defaults
(SQLite in a temporary folder, no Redis, development mode), its lifespan run, and requests
made as ASGI scopes handed straight to the app. A request's cost is the process's CPU time
(``time.process_time``) from handing it over to its last reply message, one request at a
time. Single readings cycle through 1,000 streams; batches are plain lists of numbers. The
readings are the model's training mean plus noise of 0.05 standard deviations, with 1%
single-sensor spikes of 6 standard deviations, seeded.

Every round runs each tree's singles then its batches, the trees in turn, the order
reversed every other round, so other load on the machine falls on all of them alike. It
prints each round's median and, per tree, the median of the rounds' medians as
requests per second of CPU (1 / median), the ratio to the first tree (x first), the median
of the rounds' own ratios to the first tree (paired), and the load average.
``--instructions`` counts instructions per request instead, each tree's worker under
Valgrind's callgrind with counting on only around the measured requests (a fixed hash
seed; repeated runs agree within about 0.5%): not time, but immune to the machine's load.
``--profile FILE`` instead profiles the first tree's single readings with cProfile (its
batches with ``--profile-batches``).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import orjson

REPO = Path(__file__).resolve().parents[1]
STREAMS = 1000
WARM_UP = 300


def bodies(manifest: dict[str, Any], *, singles: int, batches: int, size: int) -> dict[str, Any]:
    """The request bodies, made once: single readings over STREAMS streams, and batches."""
    scaler = manifest["scaler"]
    mean, scale = np.asarray(scaler["mean"]), np.asarray(scaler["scale"])
    rng = np.random.default_rng(7)

    def readings(n: int) -> list[list[float]]:
        values = mean + rng.normal(0, 0.05, (n, len(mean))) * scale
        spikes = np.flatnonzero(rng.random(n) < 0.01)
        values[spikes, rng.integers(0, len(mean), len(spikes))] += 6 * scale[0]
        return [[float(f"{v:.5g}") for v in row] for row in values]

    one = [
        orjson.dumps({"stream_id": f"s-{i % STREAMS:04d}", "reading": r})
        for i, r in enumerate(readings(singles))
    ]
    many = [
        orjson.dumps({"stream_id": f"b-{i % 8}", "readings": readings(size)})
        for i in range(min(batches, 16))
    ]
    return {"single": one, "batch": many}


def worker(tree: Path) -> None:
    """Serves commands from stdin: ``<kind> <count>``; answers each with the per-request
    CPU seconds as one JSON line."""
    sys.path.insert(0, str(tree))
    import service

    if not Path(service.__file__ or "").resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"{service.__file__} is not from {tree}")
    asyncio.run(_serve(tree))


async def _serve(tree: Path) -> None:
    from service.app import create_app
    from service.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            models_dir=tree / "models", store_path=Path(tmp) / "feedback.db", env="development"
        )
        app = create_app(settings)
        manifest = json.loads(next((tree / "models").glob("*/*/manifest.json")).read_text())
        async with app.router.lifespan_context(app):
            made: dict[str, Any] = {}
            for line in sys.stdin:
                kind, count, size = line.split()
                if not made:
                    made = bodies(manifest, singles=int(count), batches=16, size=int(size))
                if kind.startswith("profile-"):
                    profiler = cProfile.Profile()
                    profiler.enable()
                    times = await _run(app, made[kind.removeprefix("profile-")], int(count))
                    profiler.disable()
                    profiler.dump_stats(os.environ["BENCH_PROFILE"])
                else:
                    times = await _run(app, made[kind], int(count))
                print(json.dumps(times), flush=True)


async def _run(app: Any, payloads: list[bytes], count: int) -> list[float]:
    clock = time.process_time
    times: list[float] = []
    for i in range(count):
        body = payloads[i % len(payloads)]
        scope = _scope(body)
        sent: list[dict[str, Any]] = []
        receive, send = _channel(body, sent)
        start = clock()
        await app(scope, receive, send)
        times.append(clock() - start)
        if sent[0]["status"] != 200:
            raise SystemExit(f"status {sent[0]['status']}: {sent[-1].get('body')!r}")
    return times


def _scope(body: bytes) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/score",
        "raw_path": b"/v1/score",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


def _channel(body: bytes, sent: list[dict[str, Any]]) -> tuple[Callable[..., Any], ...]:
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop()
        await asyncio.Event().wait()  # the client stays: no disconnect
        raise AssertionError

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    return receive, send


class Worker:
    """One tree's worker process; ``callgrind_to``: run it under Valgrind's callgrind with
    counting off until :meth:`count_instructions` turns it on."""

    def __init__(
        self, tree: Path, profile_to: Path | None = None, callgrind_to: Path | None = None
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMALY_")}
        if profile_to is not None:
            env["BENCH_PROFILE"] = str(profile_to)
        prefix: list[str] = []
        if callgrind_to is not None:
            env["PYTHONHASHSEED"] = "0"  # same dict layouts, run after run
            prefix = ["valgrind", "-q", "--tool=callgrind", "--instr-atstart=no"]
            prefix.append(f"--callgrind-out-file={callgrind_to}")
        self.tree = tree
        self.callgrind_to = callgrind_to
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, __file__, "--worker", str(tree)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tree,
        )

    def run(self, kind: str, count: int, size: int) -> list[float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{kind} {count} {size}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the worker for {self.tree} died")
        times: list[float] = json.loads(line)
        return times

    def count_instructions(self, kind: str, count: int, size: int) -> None:
        """Runs ``count`` requests with callgrind counting (the total is written at exit)."""
        control = ["callgrind_control", "--instr"]
        subprocess.run([*control, "on", str(self.proc.pid)], check=True, capture_output=True)
        self.run(kind, count, size)
        subprocess.run([*control, "off", str(self.proc.pid)], check=True, capture_output=True)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=600)


def instructions(tree: Path, kind: str, count: int, size: int, out: Path) -> float:
    """Instructions per request of ``kind`` counted by callgrind (deterministic, unlike
    time on a shared machine, but not the same as time: cache misses count nothing)."""
    w = Worker(tree, callgrind_to=out)
    try:
        w.run("single", WARM_UP, size)
        w.run("batch", 20, size)
        w.count_instructions(kind, count, size)
    finally:
        w.close()
    totals = re.search(r"^totals: (\d+)", out.read_text(), re.MULTILINE)
    if totals is None:
        raise SystemExit(f"no totals in {out}")
    return int(totals.group(1)) / count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, action="append", help="source tree (repeat)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--singles", type=int, default=2000, help="single readings a round")
    parser.add_argument("--batches", type=int, default=200, help="batches a round")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--profile", type=Path, help="cProfile the first tree's singles")
    parser.add_argument("--profile-batches", action="store_true", help="... or its batches")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="count instructions per request under callgrind (Debian: valgrind) instead",
    )
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker)
        return 0
    trees: list[Path] = [t.resolve() for t in (args.tree or [REPO])]
    if args.profile is not None:
        kind, count = ("batch", args.batches) if args.profile_batches else ("single", args.singles)
        return profile(trees[0], args.profile, kind, count, args.batch_size)
    kinds = [("single", args.singles), ("batch", args.batches)]
    if args.instructions:
        return count_all(trees, kinds, args.batch_size)
    workers = [Worker(t) for t in trees]
    medians: dict[tuple[int, str], list[float]] = {}
    loads = [os.getloadavg()[0]]
    try:
        for w in workers:  # warm-up, and the first request of each kind, unmeasured
            for kind, _ in kinds:
                w.run(kind, WARM_UP if kind == "single" else 20, args.batch_size)
        for r in range(args.rounds):
            order = list(enumerate(workers))
            if r % 2:
                order.reverse()
            cells = []
            for i, w in order:
                for kind, count in kinds:
                    median = statistics.median(w.run(kind, count, args.batch_size))
                    medians.setdefault((i, kind), []).append(median)
                    cells.append(f"{trees[i].name}/{kind} {median * 1e6:7.1f} µs")
            loads.append(os.getloadavg()[0])
            print(f"round {r + 1}: " + ", ".join(cells), flush=True)
    finally:
        for w in workers:
            w.close()
    print(f"\nload average (1 min) over the run: {min(loads):.2f} to {max(loads):.2f}")
    print(
        f"{'tree':<20} {'kind':<7} {'µs CPU':>8} {'req/s of CPU':>13} {'x first':>8} {'paired':>7}"
    )
    for kind, _ in kinds:
        first = statistics.median(medians[(0, kind)])
        for i, tree in enumerate(trees):
            cost = statistics.median(medians[(i, kind)])
            # The median of each round's ratio: a round on a busier machine weighs no more.
            paired = statistics.median(
                a / b for a, b in zip(medians[(0, kind)], medians[(i, kind)], strict=True)
            )
            print(
                f"{tree.name:<20} {kind:<7} {cost * 1e6:8.1f} {1 / cost:13,.0f} "
                f"{first / cost:8.2f} {paired:7.3f}"
            )
    return 0


def count_all(trees: list[Path], kinds: list[tuple[str, int]], size: int) -> int:
    """Instructions per request for every tree and kind, two workers at a time."""
    found: dict[tuple[int, str], float] = {}
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(2) as pool:
        jobs = {
            (i, kind): pool.submit(
                instructions, tree, kind, count, size, Path(tmp) / f"{i}-{kind}.out"
            )
            for i, tree in enumerate(trees)
            for kind, count in kinds
        }
        for key, job in jobs.items():
            found[key] = job.result()
    print(f"{'tree':<20} {'kind':<7} {'instructions':>13} {'x first':>8}")
    for kind, _ in kinds:
        for i, tree in enumerate(trees):
            cost = found[(i, kind)]
            print(f"{tree.name:<20} {kind:<7} {cost:13,.0f} {found[(0, kind)] / cost:8.3f}")
    return 0


def profile(tree: Path, out: Path, kind: str, count: int, size: int) -> int:
    """cProfile of ``count`` requests of ``kind`` after the warm-up, written to ``out``."""
    w = Worker(tree, profile_to=out.resolve())
    try:
        w.run("single", WARM_UP, size)
        w.run("batch", 20, size)
        w.run(f"profile-{kind}", count, size)
    finally:
        w.close()
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(40)
    stats.sort_stats("tottime").print_stats(30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
