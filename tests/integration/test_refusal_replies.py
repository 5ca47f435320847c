"""A request refused before its body is read (401 without a key, 413 over the size limit)
gets its problem body in every common client, urllib included: urllib sends the whole body
before reading and asks for ``Connection: close``, so a server closing on unread bytes made
it see ``Connection reset by peer``. Against a real ``python -m service``."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import build_test_artifact
from service_process import ServiceProcess

pytestmark = pytest.mark.integration

KEY = "refusal-test-key-0a1b2c3d4e5f66778899"
LIMIT = 1024 * 1024
MB = 1_000_000
SIZES = [2 * MB, 8 * MB, 32 * MB]
CURL = shutil.which("curl")

# (path, key, expected status, problem type ending)
CASES = [
    ("/v1/feedback", None, 401, "unauthenticated"),
    ("/v1/feedback", KEY, 413, "payload-too-large"),  # refused by the request guard
    ("/v1/score", None, 413, "payload-too-large"),  # refused by the scoring path itself
]
CASE_IDS = ["401-feedback", "413-feedback", "413-score"]


def server_env(**extra: str) -> dict[str, str]:
    keys = [{"name": "refusals", "scopes": ["feedback", "admin"], "key": KEY}]
    return {
        "ANOMALY_API_KEYS": json.dumps(keys),
        "ANOMALY_MAX_BODY_BYTES": str(LIMIT),
        "ANOMALY_RECALIBRATION_ENABLED": "false",
        **extra,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("refusals")
    build_test_artifact(root / "models")
    process = ServiceProcess(
        root / "models", root / "store.sqlite3", root / "server.log", server_env()
    )
    try:
        process.wait_ready()
        yield process.url
    finally:
        process.stop()


def headers_for(key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-API-Key"] = key
    return headers


def body_of(size: int) -> bytes:
    return b"[" + b"0," * ((size - 3) // 2) + b"0]"


def chunks_of(size: int) -> Iterator[bytes]:
    body = body_of(size)
    step = 256 * 1024
    for start in range(0, len(body), step):
        yield body[start : start + step]


def assert_problem(status: int, body: bytes, expected: int, kind: str) -> None:
    assert status == expected, body[:200]
    assert json.loads(body)["type"].endswith("/" + kind)


def urllib_post(url: str, data: bytes | Iterator[bytes], key: str | None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers_for(key), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("path", "key", "status", "kind"), CASES, ids=CASE_IDS)
def test_urllib_gets_the_refusal(
    server: str, path: str, key: str | None, status: int, kind: str, size: int
) -> None:
    assert_problem(*urllib_post(server + path, body_of(size), key), status, kind)


@pytest.mark.parametrize(("path", "key", "status", "kind"), CASES, ids=CASE_IDS)
def test_urllib_gets_the_refusal_of_a_chunked_body(
    server: str, path: str, key: str | None, status: int, kind: str
) -> None:
    assert_problem(*urllib_post(server + path, chunks_of(8 * MB), key), status, kind)


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize(("path", "key", "status", "kind"), CASES, ids=CASE_IDS)
def test_httpx_gets_the_refusal(
    server: str, path: str, key: str | None, status: int, kind: str, chunked: bool
) -> None:
    content = chunks_of(8 * MB) if chunked else body_of(8 * MB)
    with httpx.Client(timeout=60) as client:
        response = client.post(server + path, content=content, headers=headers_for(key))
    assert_problem(response.status_code, response.content, status, kind)


@pytest.mark.skipif(CURL is None, reason="curl is not installed (apt-get install curl)")
@pytest.mark.parametrize(
    "mode", ["expect-continue", "no-expect", "chunked"], ids=["expect", "no-expect", "chunked"]
)
@pytest.mark.parametrize(("path", "key", "status", "kind"), CASES, ids=CASE_IDS)
def test_curl_gets_the_refusal(
    server: str, tmp_path: Path, path: str, key: str | None, status: int, kind: str, mode: str
) -> None:
    payload = tmp_path / "body.json"
    payload.write_bytes(body_of(8 * MB))
    command = [str(CURL), "-sS", "-o", str(tmp_path / "reply"), "-w", "%{http_code}"]
    for name, value in headers_for(key).items():
        command += ["-H", f"{name}: {value}"]
    # curl asks before sending a large body unless told not to; chunked goes without asking.
    command += {"expect-continue": [], "no-expect": ["-H", "Expect:"]}.get(
        mode, ["-H", "Transfer-Encoding: chunked", "-H", "Expect:"]
    )
    command += ["--data-binary", f"@{payload}", server + path]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert_problem(int(done.stdout), (tmp_path / "reply").read_bytes(), status, kind)


def raw_refusal(url: str, declared: int, sent: int) -> bytes:
    """Declares a body of ``declared`` bytes, sends ``sent`` of them and stops; returns what
    the server answers until it closes the connection."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        head = (
            f"POST /v1/feedback HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {declared}\r\n\r\n"
        )
        received = b""
        try:
            sock.sendall(head.encode() + b"0" * sent)
            while chunk := sock.recv(65536):
                received += chunk
        except (ConnectionResetError, BrokenPipeError):
            pass  # the bytes past the drain bound were left unread: the kernel resets
        return received


def test_the_drain_is_bounded_in_bytes_and_time(tmp_path: Path, write_test_artifact: Any) -> None:
    """A body that never ends, or never comes, does not hold the connection: past the bound
    the reply goes out with ``Connection: close`` and the server closes."""
    write_test_artifact(tmp_path / "models")
    env = server_env(ANOMALY_REFUSED_BODY_DRAIN_BYTES=str(2 * MB), ANOMALY_REFUSED_BODY_DRAIN_S="1")
    process = ServiceProcess(tmp_path / "models", tmp_path / "s.sqlite3", tmp_path / "log", env)
    try:
        process.wait_ready()
        # Trickled: a fraction of the declared body arrives, then nothing.
        reply = raw_refusal(process.url, declared=10 * MB, sent=1000)
        assert reply.startswith(b"HTTP/1.1 401"), reply[:200]
        assert b"connection: close" in reply.lower()
        # Huge: more than the bound arrives; the server stops reading and closes.
        reply = raw_refusal(process.url, declared=1000 * MB, sent=4 * MB)
        assert reply == b"" or b"connection: close" in reply.lower(), reply[:200]
    finally:
        process.stop()
