"""Where ``train`` writes its artifact (``OUT/NAME/VERSION/``): the name and version it
picks when not told, and what it refuses before spending any time on training."""

from __future__ import annotations

import re
from pathlib import Path

from service.scoring.manifest import MANIFEST_FILE, name_problem


def default_name(data: Path) -> str:
    """A model name from a data file's name: ``TEP d00.dat`` -> ``TEP-d00``.

    >>> default_name(Path("var/plant 3.csv"))
    'plant-3'
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", data.stem).strip("-._")
    return name[:128] or "model"


def next_version(folder: Path) -> str:
    """One above the highest numbered version in ``folder`` (a model's folder), or 1."""
    numbers = [int(p.name) for p in folder.iterdir() if p.name.isdigit()] if folder.is_dir() else []
    return str(max(numbers, default=0) + 1)


def artifact_dir_problem(out: Path, name: str, version: str, *, force: bool) -> str | None:
    """Everything about where the artifact goes that can be refused before training."""
    for value, what in ((name, "--name"), (version, "--version")):
        problem = name_problem(value, what)
        if problem is not None:
            return problem
    for folder in (out, out / name, out / name / version):
        if folder.exists() and not folder.is_dir():
            return f"{folder} exists and is not a folder"
    artifact_dir = out / name / version
    if not force:
        if (artifact_dir / MANIFEST_FILE).exists():
            return f"{artifact_dir} already holds a model (use --force to replace it)"
        if artifact_dir.is_dir() and any(artifact_dir.iterdir()):
            return f"{artifact_dir} holds files but no model (use --force to replace them all)"
    return None
