"""Start the servers under test on 127.0.0.1, each as its own uvicorn process, pinned to a core.

Both the service and the empty-endpoint baseline are started by the same command line
(``uvicorn <factory> --factory`` with identical flags), so the only difference between them
is the application.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[1]
SERVICE_FACTORY = "service.app:create_app"
BASELINE_FACTORY = "loadtests.baseline_app:create_app"
FLOOR_FACTORY = "loadtests.baseline_app:create_raw_app"
# The flags the service is deployed with: one worker, no access log, uvloop + httptools.
UVICORN_FLAGS = (
    "--factory",
    "--workers", "1",
    "--no-access-log",
    "--loop", "uvloop",
    "--http", "httptools",
    "--log-level", "warning",
    "--lifespan", "on",
    "--no-server-header",
)  # fmt: skip


def _die_with_parent() -> None:
    """Runs in the child before exec: if the load test is killed, its servers go too."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: servers are still stopped on normal exit
        pass


PR_SET_PDEATHSIG = 1


class ServerError(RuntimeError):
    """A server under test did not start or died; the message carries the end of its log."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cores() -> list[int]:
    return sorted(os.sched_getaffinity(0))


@dataclass(frozen=True)
class Pinning:
    """Which cores the servers and the load generators run on (empty: not pinned)."""

    server: tuple[int, ...]
    client: tuple[int, ...]

    @classmethod
    def choose(cls, enabled: bool = True) -> Pinning:
        """Servers on the first core, load generators on the others, when there are two or more
        cores and ``taskset`` exists; otherwise everything shares the machine unpinned."""
        available = cores()
        if not enabled or len(available) < 2 or shutil.which("taskset") is None:
            return cls((), ())
        return cls((available[0],), tuple(available[1:]))

    def prefix(self, which: tuple[int, ...]) -> list[str]:
        return ["taskset", "-c", ",".join(map(str, which))] if which else []

    def describe(self) -> str:
        if not self.server:
            return "not pinned"
        return (
            f"servers on core {','.join(map(str, self.server))}, "
            f"load generators on core {','.join(map(str, self.client))} (taskset)"
        )


class Server:
    """One uvicorn process; ``ready_check`` is a (method, path) that answers 2xx once ready."""

    def __init__(
        self,
        name: str,
        factory: str,
        *,
        ready_check: tuple[str, str],
        pinning: Pinning,
        env: Mapping[str, str] | None = None,
        log_dir: Path,
        cwd: Path | None = None,
        start_timeout_s: float = 60.0,
    ) -> None:
        self.name = name
        self.factory = factory
        self.ready_check = ready_check
        self.pinning = pinning
        self.env = dict(env or {})
        self.cwd = cwd or REPO_ROOT
        self.start_timeout_s = start_timeout_s
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = log_dir / f"{name}.log"

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServerError(f"{self.name} is not running")
        return self.process.pid

    def command(self) -> list[str]:
        return [
            *self.pinning.prefix(self.pinning.server),
            sys.executable, "-m", "uvicorn", self.factory,
            "--host", HOST, "--port", str(self.port),
            *UVICORN_FLAGS,
        ]  # fmt: skip

    def start(self) -> None:
        env = {**os.environ, **self.env}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + self.start_timeout_s
        method, path = self.ready_check
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServerError(
                        f"{self.name} exited with {self.process.returncode} while starting:\n"
                        f"{self.log_tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.request(method, path).is_success:
                        return
                time.sleep(0.1)
        self.stop()
        raise ServerError(
            f"{self.name} was not ready after {self.start_timeout_s:.0f} s:\n{self.log_tail()}"
        )

    def rss_bytes(self) -> int:
        """Resident set size of the server process, from /proc."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise ServerError(f"no VmRSS for {self.name} (pid {self.pid})")

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            raise ServerError(f"{self.name} died during the run:\n{self.log_tail()}")

    def log_tail(self, max_chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-max_chars:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextlib.contextmanager
def running(*servers: Server) -> Iterator[None]:
    """Start every server (in order) and always stop them all."""
    try:
        for server in servers:
            server.start()
        yield
    finally:
        for server in reversed(servers):
            server.stop()
