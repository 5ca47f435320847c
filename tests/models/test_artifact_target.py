"""Where train writes its artifact; the command's refusals are in test_cli.py."""

from __future__ import annotations

import doctest
from pathlib import Path

from models import artifact_target
from models.artifact_target import artifact_dir_problem, next_version
from service.scoring.manifest import MANIFEST_FILE


def test_doctests() -> None:
    result = doctest.testmod(artifact_target)
    assert result.attempted > 0 and result.failed == 0


def test_next_version_is_one_above_the_highest_number(tmp_path: Path) -> None:
    assert next_version(tmp_path / "absent") == "1"
    for name in ("1", "7", "draft", "10"):
        (tmp_path / name).mkdir()
    assert next_version(tmp_path) == "11"


def test_what_is_refused_before_training(tmp_path: Path) -> None:
    assert artifact_dir_problem(tmp_path, "plant", "1", force=False) is None
    assert "--version" in (artifact_dir_problem(tmp_path, "plant", "../x", force=False) or "")
    target = tmp_path / "plant" / "1"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("mine")
    assert "holds files but no model" in (
        artifact_dir_problem(tmp_path, "plant", "1", force=False) or ""
    )
    (target / MANIFEST_FILE).write_text("{}")
    assert "already holds a model" in (
        artifact_dir_problem(tmp_path, "plant", "1", force=False) or ""
    )
    assert artifact_dir_problem(tmp_path, "plant", "1", force=True) is None
    (tmp_path / "file").write_text("")
    assert "is not a folder" in (
        artifact_dir_problem(tmp_path / "file", "p", "1", force=True) or ""
    )
