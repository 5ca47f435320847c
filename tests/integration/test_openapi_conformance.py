"""schemathesis, every check, against a live ``python -m service``: every response conforms
to the service's own OpenAPI document (status, content type, headers, body), no 5xx, no
undocumented status, schema-valid input accepted and schema-invalid input refused.

Bounded and deterministic (tests/integration/schemathesis.toml): the same requests every
run. On a failure the output names the operation, the check and a curl command to replay.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from service_process import ServiceProcess

pytestmark = pytest.mark.integration

CONFIG = Path(__file__).with_name("schemathesis.toml")
KEY = "conformance-3e2d1c0b9a8f7e6d5c4b3a2f1e0d"
SERVER_ENV = {
    "ANOMALY_API_KEYS": json.dumps(
        [{"name": "fuzzer", "scopes": ["score", "feedback", "admin"], "key": KEY}]
    ),
    "ANOMALY_REQUIRE_SCORE_KEY": "true",
    "ANOMALY_RECALIBRATION_ENABLED": "false",
}


def test_every_operation_passes_every_schemathesis_check(
    tmp_path: Path, write_test_artifact: Any
) -> None:
    models = tmp_path / "models"
    write_test_artifact(models)
    server = ServiceProcess(
        models, tmp_path / "feedback.sqlite3", tmp_path / "server.log", SERVER_ENV
    )
    try:
        server.wait_ready()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "schemathesis.cli",
                "--config-file",
                str(CONFIG),
                "run",
                f"{server.url}/openapi.json",
                "--header",
                f"Authorization: Bearer {KEY}",
                "--no-color",
            ],
            capture_output=True,
            text=True,
            timeout=900,
            cwd=tmp_path,  # its report folder and cache stay out of the checkout
            env={**os.environ, "PYTHONHASHSEED": "0"},  # nothing left to chance in generation
        )
    finally:
        server.stop()
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-20_000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", output)
    tested = re.search(r"Tested: (\d+)", output)
    assert selected is not None and tested is not None, output[-5_000:]
    assert int(tested.group(1)) == int(selected.group(2)) >= 20, output[-5_000:]
