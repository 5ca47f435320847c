"""The README's tour and docs/usage.md run as written: every shell and Python example, in
order, against a real service, with the keys and reading ids the page itself defines."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from doc_examples import Example, examples, script
from service_process import REPO, free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("curl") is None, reason="curl is not installed (apt-get install curl)"
    ),
]

# Not run here: training takes minutes (tests/models trains), compose needs a container engine.
NOT_RUN = ("python -m models", "docker compose", ".env.example")


def readme_usage() -> str:
    text = (REPO / "README.md").read_text()
    return text.split("\n## Usage\n", 1)[1].split("\n## ", 1)[0]


def chosen(markdown: str) -> list[Example]:
    return [
        example
        for example in examples(markdown)
        if example.language in ("bash", "python")
        and not any(marker in example.code for marker in NOT_RUN)
    ]


def run_examples(markdown: str, tmp_path: Path) -> str:
    return run_examples_of(chosen(markdown), tmp_path)


def run_examples_of(examples_in_order: list[Example], tmp_path: Path) -> str:
    port = free_port()
    (tmp_path / "run.sh").write_text(script(examples_in_order, port))
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "PORT": str(port),
        "SERVER_LOG": str(tmp_path / "server.log"),
        "ANOMALY_STORE_PATH": str(tmp_path / "feedback.sqlite3"),
        "ANOMALY_RECALIBRATION_ENABLED": "false",
    }
    process = subprocess.Popen(
        ["bash", str(tmp_path / "run.sh")],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the server it starts goes with it on a timeout
    )
    try:
        output, _ = process.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"the examples did not finish:\n{output}")
    log = (tmp_path / "server.log").read_text() if (tmp_path / "server.log").exists() else ""
    assert process.returncode == 0, f"{output}\n--- server log ---\n{log}"
    return output


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    markdown = readme_usage()
    assert len(chosen(markdown)) >= 4
    output = run_examples(markdown, tmp_path)
    assert '"reading_id":"pump-7-0021"' in output  # scored with the id the tour gives it
    assert '"client_label_id":"shift-7-0001"' in output  # and labelled by it
    assert "anomaly_readings_scored_total" in output


def test_the_usage_page_runs_as_written(tmp_path: Path) -> None:
    markdown = (REPO / "docs" / "usage.md").read_text()
    assert any(example.language == "python" for example in chosen(markdown))
    output = run_examples(markdown, tmp_path)
    assert '"client_label_id":"shift-7-0001"' in output


def test_the_console_pages_examples_run_as_written(tmp_path: Path) -> None:
    """After the usage page's keys, as the console page sends its reader there for them."""
    usage = chosen((REPO / "docs" / "usage.md").read_text())
    keys = next(example for example in usage if "ADMIN_KEY=" in example.code)
    console = chosen((REPO / "docs" / "console.md").read_text())
    assert console, "the console page has no example to run"
    output = run_examples_of([keys, *console], tmp_path)
    assert '"reason":"seal replacement"' in output and '"reason":"finished early"' in output
