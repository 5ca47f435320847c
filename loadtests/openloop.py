"""An open-loop, fixed-rate HTTP/1.1 load generator (what wrk2 does; Debian ships only wrk).

Requests are dispatched on an absolute schedule, whether or not earlier ones have been
answered, over a pool of keep-alive connections. A request's latency runs from its dispatch
to the last byte of its response, so time spent waiting for a free connection behind a
slow response counts (no coordinated omission). The client's own timer lateness (the event
loop wakes with ~1 ms granularity) is excluded from latency and reported separately as
``dispatch_lag``; the schedule is absolute, so lateness never lowers the offered rate.

Run as ``python -m loadtests.openloop RECORDS --port P --rate R --duration S``; prints one
JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.wire import Record, read_records, request_stream


class ProtocolError(Exception):
    """The server's response could not be parsed as HTTP/1.1."""


class Connection:
    """A keep-alive connection that sends one raw request at a time and reads the response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, limit=1 << 24)
        return cls(reader, writer)

    async def exchange(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(status_line.split(" ", 2)[1])
        except (IndexError, ValueError):
            raise ProtocolError(f"bad status line {status_line!r}") from None
        headers = {}
        for line in header_lines:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            body = await self._read_chunked()
        else:
            raise ProtocolError("response has neither Content-Length nor chunked encoding")
        return status, body

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await self.reader.readexactly(size))
            await self.reader.readexactly(2)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


clock = time.perf_counter
_SPIN_S = 0.0015
_EXCHANGE_ERRORS = (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ProtocolError)


@dataclass
class OpenLoopResult:
    rate: float
    duration_s: float
    scheduled: int
    completed: int = 0
    errors_status: int = 0
    errors_io: int = 0
    unfinished: int = 0
    latencies_s: list[float] = field(default_factory=list)
    dispatch_lags_s: list[float] = field(default_factory=list)
    error_samples: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    def note_error(self, message: str) -> None:
        if len(self.error_samples) < 5:
            self.error_samples.append(message[:300])


async def run_open_loop(
    records: list[Record],
    n_streams: int,
    *,
    host: str,
    port: int,
    rate: float,
    duration_s: float,
    connections: int,
    grace_s: float = 10.0,
) -> OpenLoopResult:
    """Send ``rate * duration_s`` requests on schedule; give up on stragglers after ``grace_s``."""
    if rate <= 0 or duration_s <= 0 or connections < 1:
        raise ValueError("rate, duration and connections must be positive")
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    # Every connection ever opened, replacements included: a straggler cancelled mid-exchange
    # holds one outside the pool, and each is closed at the end (no transport left to GC).
    opened: list[Connection] = []
    tasks: set[asyncio.Task[None]] = set()
    try:
        for _ in range(connections):
            opened.append(await Connection.open(host, port))
        for conn in opened:
            pool.put_nowait(conn)
        scheduled = max(1, round(rate * duration_s))
        result = OpenLoopResult(rate=rate, duration_s=duration_s, scheduled=scheduled)
        raw_requests = request_stream(records, n_streams)

        async def send(raw: bytes) -> None:
            dispatched = clock()
            conn = await pool.get()
            try:
                status, body = await conn.exchange(raw)
            except _EXCHANGE_ERRORS as exc:
                result.errors_io += 1
                result.note_error(f"{type(exc).__name__}: {exc}")
                await conn.close()
                try:
                    conn = await Connection.open(host, port)
                except OSError as reopen_exc:
                    result.note_error(f"reconnect failed: {reopen_exc}")
                    return
                opened.append(conn)
                pool.put_nowait(conn)
                return
            result.latencies_s.append(clock() - dispatched)
            pool.put_nowait(conn)
            result.completed += 1
            if status >= 400:
                result.errors_status += 1
                result.note_error(f"HTTP {status}: {body[:200]!r}")

        start = clock() + 0.05
        for i in range(scheduled):
            intended = start + i / rate
            # The loop's timers have ~1 ms resolution: sleep most of the way, then yield to the
            # loop (which keeps reading responses) until the send time.
            delay = intended - clock() - _SPIN_S
            if delay > 0:
                await asyncio.sleep(delay)
            while clock() < intended:
                await asyncio.sleep(0)
            result.dispatch_lags_s.append(clock() - intended)
            task = asyncio.create_task(send(next(raw_requests)[1]))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            _, pending = await asyncio.wait(set(tasks), timeout=grace_s)
            result.unfinished = len(pending)
        result.elapsed_s = clock() - start
    finally:
        # Stragglers (or every task, on an error) cancelled and awaited: a task left pending
        # would be destroyed with the loop, its connection unclosed.
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for conn in opened:
            await conn.close()
    return result


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


def summarise(result: OpenLoopResult) -> dict[str, object]:
    lat_us = [x * 1e6 for x in result.latencies_s]
    lag_us = [x * 1e6 for x in result.dispatch_lags_s]
    return {
        "rate": result.rate,
        "scheduled": result.scheduled,
        "completed": result.completed,
        "elapsed_s": result.elapsed_s,
        "errors": {
            "status": result.errors_status,
            "io": result.errors_io,
            "unfinished": result.unfinished,
        },
        "latency_us": {
            "p50": percentile(lat_us, 50),
            "p90": percentile(lat_us, 90),
            "p95": percentile(lat_us, 95),
            "p99": percentile(lat_us, 99),
            "p999": percentile(lat_us, 99.9),
            "max": max(lat_us, default=float("nan")),
            "mean": sum(lat_us) / len(lat_us) if lat_us else float("nan"),
        },
        "dispatch_lag_us": {
            "p50": percentile(lag_us, 50),
            "p99": percentile(lag_us, 99),
            "max": max(lag_us, default=float("nan")),
        },
        "error_samples": result.error_samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.openloop", description=__doc__)
    parser.add_argument("records", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds of sending")
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args(argv)
    records, n_streams = read_records(args.records)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        runner = asyncio.run
    else:
        runner = uvloop.run
    began = time.perf_counter()
    result = runner(
        run_open_loop(
            records,
            n_streams,
            host=args.host,
            port=args.port,
            rate=args.rate,
            duration_s=args.duration,
            connections=args.connections,
        )
    )
    summary = summarise(result)
    summary["wall_s"] = time.perf_counter() - began
    json.dump(summary, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
