"""The machine a run's figures depend on: CPU, cores, load, versions, commit."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtests.servers import REPO_ROOT, UVICORN_FLAGS


def machine_facts() -> dict[str, Any]:
    """What the figures depend on: CPU, cores, load, versions."""
    facts: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "uvicorn_flags": list(UVICORN_FLAGS),
    }
    try:
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
        facts["wrk"] = (wrk.stdout or wrk.stderr).splitlines()[0]
    except (OSError, IndexError):
        facts["wrk"] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO_ROOT,
        )
        facts["commit"] = commit.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        facts["commit"] = None
    return facts


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
