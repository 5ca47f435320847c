"""nginx with the repository's balancer config (deploy/nginx/) in front of given replicas,
started and stopped by a test: used by test_nginx_balancer.py and the cluster harness."""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from service_process import free_port


def _nginx_support() -> ModuleType:
    """tests/deploy/nginx_support.py (one copy, whichever test directory imports it first)."""
    loaded = sys.modules.get("nginx_support")
    if loaded is not None:
        return loaded
    path = Path(__file__).resolve().parents[1] / "deploy" / "nginx_support.py"
    spec = importlib.util.spec_from_file_location("nginx_support", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["nginx_support"] = module
    spec.loader.exec_module(module)
    return module


support = _nginx_support()


@dataclass
class Balancer:
    url: str
    process: subprocess.Popen[bytes]
    access_log: Path
    error_log: Path

    def log_lines(self) -> list[str]:
        return self.access_log.read_text().splitlines()


class Balancers:
    """Starts nginx with the repository's config in front of given upstreams; stops them."""

    def __init__(self, nginx: str) -> None:
        self.nginx = nginx
        self.started: list[tuple[Balancer, Path]] = []

    def start(self, upstreams: list[str]) -> Balancer:
        # Not pytest's tmp_path: nginx's workers run as `nobody` under root and must reach
        # their temporary folders (render opens the prefix to them).
        prefix = Path(tempfile.mkdtemp(prefix="anomaly-nginx-"))
        port = free_port()
        conf = support.render(prefix, upstreams, f"127.0.0.1:{port}")
        balancer = Balancer(
            f"http://127.0.0.1:{port}",
            support.start(self.nginx, conf, prefix / "access.log", prefix / "error.log"),
            prefix / "access.log",
            prefix / "error.log",
        )
        self.started.append((balancer, prefix))
        deadline = time.monotonic() + 30
        while True:
            if balancer.process.poll() is not None:
                raise AssertionError(f"nginx exited: {balancer.error_log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return balancer
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("nginx did not listen") from None
                time.sleep(0.05)

    def stop_all(self) -> None:
        for balancer, prefix in self.started:
            support.stop(balancer.process)
            shutil.rmtree(prefix, ignore_errors=True)
        self.started.clear()
