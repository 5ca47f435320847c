"""The README is a front door: the two set-up commands, a short tour, one line per folder,
and links that land; everything else lives in docs/ (checked in test_deploy_docs.py)."""

from __future__ import annotations

import os
import re

from docs_support import DOCS, README, REPO, github_anchors, relative_links

# A wall of text is what the README was before docs/ existed; keep it a page.
MOST_LINES = 300


def _section(title: str) -> str:
    text = README.read_text()
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_set_up_is_exactly_the_two_commands() -> None:
    block = _section("Set-up").split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#", 1)[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == ["scripts/serve", "scripts/test"]
    for command in commands:
        assert os.access(REPO / command, os.X_OK), command


def test_the_readme_stays_a_front_door() -> None:
    assert len(README.read_text().splitlines()) <= MOST_LINES
    for title in ("Usage", "Architecture", "Where to change what", "Documentation"):
        assert _section(title).strip(), title


def _column(section: str, index: int) -> list[str]:
    rows = [line.split(" | ") for line in section.splitlines() if line.startswith("| ")]
    return [row[index] for row in rows[2:]]  # past the header and its rule


def test_every_folder_and_file_the_readme_names_exists() -> None:
    """The folders of the architecture table, and every path the "where to change what"
    table points to (a path has a slash or is a top-level file such as `.env.example`)."""
    cells = _column(_section("Architecture"), 0) + _column(_section("Where to change what"), 1)
    paths = [name for cell in cells for name in re.findall(r"`([\w./-]+)`", cell)]
    paths = [name for name in paths if "/" in name or (REPO / name).is_file()]
    assert len(paths) > 30
    for name in paths:
        assert (REPO / name).exists(), name


def test_every_link_lands_and_every_docs_page_is_linked() -> None:
    links = relative_links(README)
    for target, anchor in links:
        assert target.exists(), target
        if anchor:
            assert anchor in github_anchors(target.read_text()), f"{target.name}#{anchor}"
    linked = {target for target, _ in links}
    assert set(DOCS.glob("*.md")) <= linked
    assert REPO / "tests" / "README.md" in linked
