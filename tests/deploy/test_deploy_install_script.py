"""scripts/install run twice at once (scripts/serve and scripts/test started together) installs
once: the second run waits on the lock, then finds the install current.

The script runs in a copy of the repository's shape with a stand-in Python whose ``venv``
and ``pip`` record when they start and end, so the test takes a second, not a real install.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from docs_support import REPO

# `python -m venv .venv` makes a .venv/bin/python that logs every pip call and takes a
# while, long enough for a second run to arrive during it.
FAKE_PYTHON = """#!/usr/bin/env bash
set -eu
log="$(cd "$(dirname "$0")" && pwd)/calls.log"
if [[ "$1 $2" == "-m venv" ]]; then
    mkdir -p "$3/bin"
    cp "$0" "$3/bin/python"
    log="$3/bin/calls.log"
fi
echo "start $$ $*" >> "$log"
sleep 0.5
echo "end $$" >> "$log"
"""


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "repo"
    (project / "scripts").mkdir(parents=True)
    shutil.copy(REPO / "scripts" / "install", project / "scripts" / "install")
    shutil.copy(REPO / "pyproject.toml", project / "pyproject.toml")
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    return project


def test_two_installs_at_once_install_once(tmp_path: Path) -> None:
    if shutil.which("flock") is None:
        pytest.skip("flock is not installed (Debian package util-linux)")
    project = _project(tmp_path)
    env = {**os.environ, "PYTHON": str(tmp_path / "python3")}
    first = subprocess.Popen(
        [project / "scripts" / "install"], env=env, stderr=subprocess.PIPE, text=True
    )
    time.sleep(0.2)  # the first run holds the lock (it creates the venv for 0.5 s)
    second = subprocess.Popen(
        [project / "scripts" / "install"], env=env, stderr=subprocess.PIPE, text=True
    )
    _, first_err = first.communicate(timeout=60)
    _, second_err = second.communicate(timeout=60)
    assert (first.returncode, second.returncode) == (0, 0), first_err + second_err
    assert "waiting for another install" in second_err

    calls = (project / ".venv" / "bin" / "calls.log").read_text().splitlines()
    # one venv, one install (pip upgrade, then the project), never two calls at once
    assert [line.split(" ", 2)[2] for line in calls if line.startswith("start")] == [
        "-m venv .venv",
        "-m pip install --quiet --upgrade pip",
        "-m pip install --quiet -e .[dev]",
    ]
    assert [line.split()[0] for line in calls] == ["start", "end"] * 3
    assert len(list((project / ".venv").glob(".installed-*"))) == 1


def test_a_current_install_returns_at_once(tmp_path: Path) -> None:
    project = _project(tmp_path)
    env = {**os.environ, "PYTHON": str(tmp_path / "python3")}
    subprocess.run([project / "scripts" / "install"], env=env, check=True, timeout=60)
    log = project / ".venv" / "bin" / "calls.log"
    before = log.read_text()
    subprocess.run([project / "scripts" / "install"], env=env, check=True, timeout=60)
    assert log.read_text() == before
