"""Real processes for the live Prometheus test: the service, a Prometheus scraping it every
second with the rule files on a test clock, and a small client for Prometheus's HTTP API."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

PROMETHEUS_BINARY = "/usr/bin/prometheus"
T = TypeVar("T")


def find_prometheus() -> str | None:
    if Path(PROMETHEUS_BINARY).exists():
        return PROMETHEUS_BINARY
    return shutil.which("prometheus")


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    interval: float = 0.5,
    what: str,
) -> T:
    """Poll until ``condition`` returns something truthy; fail naming ``what`` on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Process:
    """A child process with its combined output in a log file, stopped on exit."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        if self.alive():
            self.popen.terminate()
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


@contextlib.contextmanager
def running(name: str, args: list[str], *, env: Mapping[str, str], log: Path) -> Iterator[Process]:
    with log.open("wb") as sink:
        popen = subprocess.Popen(args, stdout=sink, stderr=subprocess.STDOUT, env=dict(env))
    process = Process(name, popen, log)
    try:
        yield process
    finally:
        process.stop()


def service_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """The parent's environment without any ANOMALY_* variable, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANOMALY_")}
    for name, value in settings.items():
        key = f"ANOMALY_{name.upper()}"
        env[key] = value if isinstance(value, str) else json.dumps(value)
    return env


def start_service(
    tmp: Path, port: int, settings: Mapping[str, Any]
) -> contextlib.AbstractContextManager[Process]:
    args = [sys.executable, "-m", "service", "--host", "127.0.0.1", "--port", str(port)]
    return running("service", args, env=service_env(settings), log=tmp / "service.log")


def write_prometheus_config(
    tmp: Path, *, service_port: int, rule_texts: Mapping[str, str], job: str
) -> Path:
    rules_dir = tmp / "rules"
    rules_dir.mkdir()
    for name, text in rule_texts.items():
        (rules_dir / name).write_text(text)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
        "rule_files": [str(rules_dir / "*.yml")],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"127.0.0.1:{service_port}"]}],
            }
        ],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_prometheus(
    binary: str, tmp: Path, config: Path, port: int
) -> contextlib.AbstractContextManager[Process]:
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={tmp / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    return running("prometheus", args, env=os.environ, log=tmp / "prometheus.log")


class PrometheusAPI:
    """The few endpoints of Prometheus's HTTP API the test reads."""

    def __init__(self, port: int) -> None:
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def close(self) -> None:
        self.client.close()

    def _get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        body = response.json()
        if response.status_code != 200 or body.get("status") != "success":
            raise AssertionError(f"{path} {params}: {response.status_code} {body}")
        return body["data"]

    def ready(self) -> bool:
        try:
            return self.client.get("/-/ready").status_code == 200
        except httpx.HTTPError:
            return False

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self._get("/api/v1/query", query=expr)
        assert data["resultType"] == "vector", (expr, data["resultType"])
        result: list[dict[str, Any]] = data["result"]
        return result

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[Any]:
        data = self._get("/api/v1/query_range", query=expr, start=start, end=end, step=step)
        result: list[Any] = data["result"]
        return result

    def rules(self) -> list[dict[str, Any]]:
        groups = self._get("/api/v1/rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    def alerts(self) -> list[dict[str, Any]]:
        alerts: list[dict[str, Any]] = self._get("/api/v1/alerts")["alerts"]
        return alerts

    def firing(self) -> set[str]:
        return {a["labels"]["alertname"] for a in self.alerts() if a["state"] == "firing"}

    def target_up(self) -> bool:
        targets = self._get("/api/v1/targets")["activeTargets"]
        return bool(targets) and all(t["health"] == "up" for t in targets)


def has_finite_value(result: list[dict[str, Any]]) -> bool:
    return any(math.isfinite(float(series["value"][1])) for series in result)
