"""Reading the Markdown docs the way GitHub renders them: heading anchors and relative links."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"

_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _outside_code(markdown: str) -> list[str]:
    lines, in_code = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code:
            lines.append(line)
    return lines


def github_anchors(markdown: str) -> dict[str, str]:
    """Each heading's anchor as GitHub renders it: lower case, punctuation other than ``-`` and
    ``_`` dropped, spaces to hyphens, and ``-1``, ``-2``... on repeats. Code blocks are skipped."""
    anchors: dict[str, str] = {}
    seen: dict[str, int] = {}
    for line in _outside_code(markdown):
        heading = re.match(r"^#{1,6} (.+?)#*\s*$", line)
        if heading is None:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors[slug if count == 0 else f"{slug}-{count}"] = heading.group(1).strip()
    return anchors


def relative_links(page: Path) -> list[tuple[Path, str]]:
    """Every Markdown link of a page that is not a URL, as (file it names, anchor or "")."""
    links = []
    for line in _outside_code(page.read_text()):
        for target in _LINK.findall(line):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            links.append(((page.parent / path).resolve() if path else page, anchor))
    return links
