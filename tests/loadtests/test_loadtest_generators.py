"""The open-loop generator keeps its schedule and counts failures; wrk results are parsed."""

from __future__ import annotations

import asyncio
import math
import shutil
from pathlib import Path

import pytest
from http_recorder import recording_server

from loadtests.generators import run_wrk
from loadtests.openloop import percentile, run_open_loop, summarise
from loadtests.servers import Pinning
from loadtests.wire import RequestTemplate, render, write_records

TEMPLATE = RequestTemplate("POST", "/s", b'{"n":"@UNIQUE@@@"}', "application/json", readings=1)


def test_open_loop_sends_on_schedule_and_counts_everything() -> None:
    with recording_server() as recorder:
        records = render([TEMPLATE], "127.0.0.1", recorder.port, run_tag="0123456789")
        result = asyncio.run(
            run_open_loop(
                records, 1, host="127.0.0.1", port=recorder.port, rate=200, duration_s=0.5,
                connections=4,
            )
        )  # fmt: skip
        received = len(recorder.requests)
    assert result.scheduled == 100
    assert result.completed == 100 == received
    assert result.errors_status == result.errors_io == result.unfinished == 0
    # an absolute schedule: 100 sends at 200/s take about half a second, not more
    assert 0.45 <= result.elapsed_s < 2.0
    assert len(result.latencies_s) == 100 and all(x > 0 for x in result.latencies_s)


def test_open_loop_counts_error_statuses_and_keeps_samples() -> None:
    with recording_server(status=503) as recorder:
        records = render([TEMPLATE], "127.0.0.1", recorder.port, run_tag="0123456789")
        result = asyncio.run(
            run_open_loop(
                records, 1, host="127.0.0.1", port=recorder.port, rate=100, duration_s=0.1,
                connections=2,
            )
        )  # fmt: skip
    assert result.errors_status == result.scheduled == 10
    assert result.error_samples and result.error_samples[0].startswith("HTTP 503")


def test_open_loop_waits_for_a_slow_server_and_counts_the_wait() -> None:
    """With one connection and a server slower than the schedule, later requests queue for
    the connection: their latency includes the queueing (no coordinated omission)."""
    with recording_server(delay_s=0.05) as recorder:
        records = render([TEMPLATE], "127.0.0.1", recorder.port, run_tag="0123456789")
        result = asyncio.run(
            run_open_loop(
                records, 1, host="127.0.0.1", port=recorder.port, rate=100, duration_s=0.1,
                connections=1,
            )
        )  # fmt: skip
    assert result.completed == 10
    # the 10th request was dispatched at ~90 ms and served last, at ~500 ms
    assert max(result.latencies_s) > 0.3


def test_percentiles_and_summary() -> None:
    values = [float(x) for x in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    assert math.isnan(percentile([], 50))
    assert percentile([3.0], 99.9) == 3.0


def test_summary_reports_milliseconds_and_lag() -> None:
    with recording_server() as recorder:
        records = render([TEMPLATE], "127.0.0.1", recorder.port, run_tag="0123456789")
        result = asyncio.run(
            run_open_loop(
                records, 1, host="127.0.0.1", port=recorder.port, rate=50, duration_s=0.2,
                connections=2,
            )
        )  # fmt: skip
    summary = summarise(result)
    assert summary["completed"] == 10
    latency = summary["latency_us"]
    assert isinstance(latency, dict) and 0 < latency["p50"] <= latency["p99"] <= latency["max"]


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_wrk_measurement_is_parsed(tmp_path: Path) -> None:
    with recording_server(status=500) as recorder:
        records = render([TEMPLATE], "127.0.0.1", recorder.port, run_tag="0123456789")
        path = tmp_path / "r.records"
        write_records(path, records, n_streams=1)
        measurement = run_wrk(
            path, port=recorder.port, duration_s=1, connections=2, pinning=Pinning.choose(False)
        )
        received = len(recorder.requests)
    assert measurement.tool == "wrk"
    assert 0 < measurement.requests <= received
    assert measurement.errors == measurement.error_detail["status"] == measurement.requests
    assert measurement.error_rate == 1.0
    assert 0 < measurement.latency_ms["p50"] <= measurement.latency_ms["p99"]


def test_open_loop_closes_every_connection_it_opened_even_when_it_gives_up() -> None:
    """The first connection is dropped by the server (an I/O error: the generator opens a
    replacement), and the replacement never answers (a straggler, cancelled after the grace
    period). Every connection, the replacement too, is closed when the run returns: none is
    left for the garbage collector to find open (a ResourceWarning in a later test)."""
    accepted: list[asyncio.Event] = []

    async def scenario() -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            closed = asyncio.Event()
            accepted.append(closed)
            if len(accepted) == 1:
                await reader.read(1)
                writer.close()  # the first request fails: the generator reconnects
            await reader.read()  # until the client closes its end
            closed.set()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        records = render([TEMPLATE], "127.0.0.1", port, run_tag="0123456789")
        async with server:
            result = await run_open_loop(
                records, 1, host="127.0.0.1", port=port, rate=100, duration_s=0.02,
                connections=1, grace_s=0.5,
            )  # fmt: skip
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in accepted)), timeout=10)
        return result.errors_io

    assert asyncio.run(scenario()) == 1
    assert len(accepted) == 2
