"""The records format, token filling, and that wrk's Lua replay sends exactly what the Python
side says it sends (the open-loop generator and the response probe rely on that)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from http_recorder import recording_server

from loadtests.servers import Pinning
from loadtests.wire import (
    RequestTemplate,
    read_records,
    render,
    request_stream,
    write_records,
)

SCORE = RequestTemplate(
    "POST",
    "/v1/score",
    b'{"stream_id":"lt-@STREAM@@@","reading":{"values":[1.5],"reading_id":"r-@RUNTAG@@@-@UNIQUE@@@"}}',
    "application/json",
    readings=1,
)
BINARY = RequestTemplate(
    "POST",
    "/v1/score?stream_id=lt-@STREAM@@@",
    bytes(range(256)) * 4,
    "application/octet-stream",
    readings=64,
    kind="score-binary",
)
LABEL = RequestTemplate(
    "POST",
    "/v1/feedback",
    b'{"label":"normal","reading_ids":["r-@RUNTAG@@@-@BACKREF@@"],"id":"@UNIQUE@@@"}',
    "application/json",
    readings=0,
    kind="feedback",
    headers={"X-API-Key": "k"},
    backref=2,
)
CYCLE = [SCORE, BINARY, SCORE, LABEL]


def test_records_round_trip_and_tokens(tmp_path: Path) -> None:
    records = render(CYCLE, "127.0.0.1", 8123, run_tag="abcde12345")
    path = tmp_path / "cycle.records"
    write_records(path, records, n_streams=3)
    assert read_records(path) == (records, 3)
    sends = request_stream(records, 3)
    first = [next(sends) for _ in range(8)]
    # send 4 names send 2 back: 4 > backref, so it's the label; send numbers start at 1
    indexes = [index for index, _ in first]
    assert indexes == [0, 1, 2, 3, 0, 1, 2, 3]
    label = first[3][1]
    assert b'"reading_ids":["r-abcde12345-0000000002"],"id":"0000000004"' in label
    assert b"X-API-Key: k\r\n" in label
    score = first[0][1]
    assert b'"stream_id":"lt-0000000001"' in score and b"r-abcde12345-0000000001" in score
    assert b'"stream_id":"lt-0000000002"' in first[4][1]  # 5 % 3
    # every request's Content-Length still matches its body after filling
    for _, raw in first:
        head, _, body = raw.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b": ")[1])
            for line in head.split(b"\r\n")
            if line.startswith(b"Content-Length")
        )
        assert length == len(body)


def test_back_reference_waits_for_its_target() -> None:
    late = RequestTemplate("POST", "/x", b"@BACKREF@@", "text/plain", 0, backref=5)
    records = render([SCORE, late], "127.0.0.1", 1, run_tag="0123456789")
    sends = request_stream(records, 10)
    indexes = [next(sends)[0] for _ in range(8)]
    # sends 2 and 4 come before 5 sends exist: the first request stands in for them
    assert indexes == [0, 0, 0, 0, 0, 1, 0, 1]


def test_render_refuses_bad_run_tags_and_a_leading_back_reference() -> None:
    with pytest.raises(ValueError, match="run_tag"):
        render([SCORE], "127.0.0.1", 1, run_tag="short")
    with pytest.raises(ValueError, match="first request"):
        render([LABEL, SCORE], "127.0.0.1", 1, run_tag="0123456789")


@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_wrk_replay_sends_what_python_predicts(tmp_path: Path) -> None:
    with recording_server() as recorder:
        records = render(CYCLE, "127.0.0.1", recorder.port, run_tag="fedcba9876")
        path = tmp_path / "cycle.records"
        write_records(path, records, n_streams=3)
        lua = Path(__file__).resolve().parents[2] / "loadtests" / "replay.lua"
        completed = subprocess.run(
            [
                "wrk",
                "-t1",
                "-c1",
                "-d1s",
                "-s",
                str(lua),
                f"http://127.0.0.1:{recorder.port}",
                "--",
                str(path),
            ],  # fmt: skip
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        received = list(recorder.requests)
    assert "LOADTEST_RESULT" in completed.stdout
    assert len(received) > 20
    sends = request_stream(records, 3)
    expected = [next(sends)[1] for _ in received]
    assert received == expected


def test_pinning_splits_cores_or_stays_off() -> None:
    off = Pinning.choose(enabled=False)
    assert off.prefix(off.server) == [] and off.describe() == "not pinned"
    pinning = Pinning.choose()
    if pinning.server:
        assert not set(pinning.server) & set(pinning.client)
        assert pinning.prefix(pinning.server)[:2] == ["taskset", "-c"]
