"""The load-test command end to end, for seconds: every scenario runs against real servers
and every answer is checked. Timings are printed, never asserted (CI machines vary).

It uses the bundled model when the repo has one (what ``python -m loadtests run`` loads on
a fresh clone), otherwise a 50-sensor scripted test artifact.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadtests.scenarios import SCENARIOS
from loadtests.servers import REPO_ROOT
from service.scoring.artifact import discover_artifacts

pytestmark = pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk; .ci/run does)"
)


@pytest.fixture
def smoke_models(tmp_path: Path, write_test_artifact: Any) -> Path:
    bundled = REPO_ROOT / "models"
    if discover_artifacts(bundled):
        return bundled
    folder = tmp_path / "models"
    write_test_artifact(folder, "synthetic-plant", n_sensors=50)
    return folder


def run_loadtests(
    *args: str, models: Path, output: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """``python -m loadtests run`` for a second a scenario, one round, no warm-up."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "loadtests",
            "run",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--rounds",
            "1",
            *args,
            "--models-dir",
            str(models),
            "--output",
            str(output),
        ],  # fmt: skip
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_every_scenario_runs_and_answers_correctly(smoke_models: Path, tmp_path: Path) -> None:
    output = tmp_path / "loadtest.json"
    completed = run_loadtests(
        "--soak-duration", "3", "--binary-batch", "1000", "--soak-streams", "3000",
        "--soak-capacity", "500", models=smoke_models, output=output, timeout=240,
    )  # fmt: skip
    print(completed.stdout)
    # 0: every target met, 1: some missed (timings are not this test's business), 2: broken
    assert completed.returncode in (0, 1), completed.stderr[-3000:]
    for name in SCENARIOS:
        assert any(line.startswith(name + " ") for line in completed.stdout.splitlines()), name
    data = json.loads(output.read_text())
    results = {r["name"]: r for r in data["results"]}
    assert list(results) == list(SCENARIOS)
    for name, result in results.items():
        assert result["requests"] > 0, name
        assert result["error_rate"] == 0.0, (name, result["errors"], result["extra"])
    assert results["single"]["ratio_vs_empty"] > 0
    assert results["single"]["readings_per_request"] == 1
    assert results["json-batch"]["readings_per_request"] == 1000
    assert results["binary-batch"]["readings_per_request"] == 1000
    assert results["binary-batch-npz"]["readings_per_request"] == 1000
    statuses = results["mixed"]["extra"]["server_statuses"]
    assert statuses.get("POST /v1/feedback 201", 0) > 0, statuses
    assert not any(" 4" in key for key in statuses), statuses  # no 404 unknown reading etc.
    fixed = results["fixed-rate-single"]
    assert fixed["requests"] == fixed["extra"]["scheduled"] == 300
    soak = results["soak"]["extra"]
    assert soak["active_streams"] <= 500 < soak["evictions"] + 500
    assert soak["evictions"] > 0 and soak["state_bounded"]
    assert len(soak["rss"]["samples"]) >= 3
    # Every soak request scored a reading, a windowed model's too (its window in a request).
    assert soak["rss"]["samples"][-1][2] >= results["soak"]["requests"]
    assert data["meta"]["cores"] >= 1 and data["meta"]["uvicorn_flags"]


def test_the_mixed_scenario_alone_labels_only_scored_readings(
    smoke_models: Path, tmp_path: Path
) -> None:
    """Run on a fresh server, with no scenario before it to warm its streams up: every label
    names a reading its stream scored, whatever window the served model reads."""
    output = tmp_path / "loadtest.json"
    completed = run_loadtests(
        "--scenario", "mixed", models=smoke_models, output=output, timeout=120
    )
    assert completed.returncode in (0, 1), completed.stderr[-3000:]
    (mixed,) = json.loads(output.read_text())["results"]
    statuses = mixed["extra"]["server_statuses"]
    assert statuses.get("POST /v1/feedback 201", 0) > 0, statuses
    assert mixed["error_rate"] == 0.0, (mixed["errors"], statuses)
