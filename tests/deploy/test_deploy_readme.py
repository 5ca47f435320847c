"""The README's operations section: its configuration table is the Settings class, and every
alert's runbook link lands on a runbook entry.

After changing Settings, rewrite the table in place with
``.venv/bin/python tests/deploy/test_deploy_readme.py --write`` (without ``--write`` it prints it).
"""

from __future__ import annotations

import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from promql_support import REPO, alert_rules
from pydantic.fields import FieldInfo

from service.settings import Settings

README = REPO / "README.md"
TABLE_START = "<!-- config-table:start -->"
TABLE_END = "<!-- config-table:end -->"
TABLE_HEADER = "| Variable | Default | Type | What it does |\n|---|---|---|---|"


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        return " or ".join(_type_name(a) for a in inner) + " (optional)"
    if origin is list:
        return "JSON list"
    if origin is dict:
        return "JSON object"
    names = {str: "text", int: "integer", float: "number", bool: "boolean", Path: "path"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    else:
        value = field.default
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, Path):
        if value.is_absolute() and value.is_relative_to(REPO):
            return f"`{value.relative_to(REPO)}/` in the repository"
        return f"`{value}`"
    if isinstance(value, (list, dict)):
        return f"`{value!r}`"
    return f"`{value}`"


def _markdown_cell(text: str) -> str:
    """Pipes escaped; outside code spans, < and > as entities so <hex> is not read as HTML."""
    parts = text.replace("|", "\\|").replace("\n", " ").split("`")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def render_settings_table() -> str:
    rows = [TABLE_HEADER]
    for name, field in Settings.model_fields.items():
        description = _markdown_cell(field.description or "")
        rows.append(
            f"| `ANOMALY_{name.upper()}` | {_default(field)} | {_type_name(field.annotation)} "
            f"| {description} |"
        )
    return "\n".join(rows)


def _operations_section() -> str:
    text = README.read_text()
    start = text.index("<!-- section: operations -->")
    following = text.find("<!-- section:", start + 1)
    return text[start : following if following != -1 else len(text)]


def _github_anchor(heading: str) -> str:
    """GitHub's heading slug: lower case, punctuation dropped, spaces to hyphens."""
    slug = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return slug.replace(" ", "-")


def test_the_configuration_table_is_the_settings_class() -> None:
    section = _operations_section()
    assert TABLE_START in section and TABLE_END in section
    table = section.split(TABLE_START)[1].split(TABLE_END)[0].strip()
    expected = render_settings_table()
    assert table == expected, (
        "README configuration table is out of date; rewrite it with "
        "`.venv/bin/python tests/deploy/test_deploy_readme.py --write`"
    )


def test_the_table_lists_every_field_once() -> None:
    """Independent of the rendering: the variables in the table are exactly the fields."""
    table = _operations_section().split(TABLE_START)[1].split(TABLE_END)[0]
    listed = re.findall(r"^\| `ANOMALY_([A-Z0-9_]+)` \|", table, flags=re.MULTILINE)
    assert sorted(listed) == sorted(name.upper() for name in Settings.model_fields)


def test_every_alert_has_a_runbook_entry_that_its_link_lands_on() -> None:
    section = _operations_section()
    headings = {
        _github_anchor(m.group(1)): m.group(1)
        for m in re.finditer(r"^#{2,5} (.+)$", section, flags=re.MULTILINE)
    }
    for rule in alert_rules():
        anchor = rule["annotations"]["runbook_url"].split("#", 1)[1]
        assert anchor in headings, f"{rule['alert']}: no heading for #{anchor}"
        entry = section.split(f"#### {headings[anchor]}\n", 1)[1].split("\n#### ", 1)[0]
        assert "**Means:**" in entry and "**Do:**" in entry, rule["alert"]


def test_the_section_has_quick_start_architecture_and_runbook() -> None:
    section = _operations_section()
    for needle in (
        "cp .env.example .env",
        "docker compose up",
        "### Architecture",
        "### Operations runbook",
        "promtool test rules",
    ):
        assert needle in section, needle


def write_settings_table() -> None:
    text = README.read_text()
    before, rest = text.split(TABLE_START, 1)
    _, after = rest.split(TABLE_END, 1)
    README.write_text(f"{before}{TABLE_START}\n{render_settings_table()}\n{TABLE_END}{after}")


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write_settings_table()
    else:
        print(render_settings_table())
