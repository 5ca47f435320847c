"""The operations docs: docs/operations.md's configuration table is the Settings class, and
every alert's runbook link is an absolute URL, built from the one configured base, that lands
on an entry of docs/runbook.md.

After changing Settings, rewrite the table in place with
``.venv/bin/python tests/deploy/test_deploy_docs.py --write`` (without ``--write`` it prints it).
"""

from __future__ import annotations

import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from docs_support import DOCS, github_anchors, relative_links
from promql_support import PROMETHEUS_CONFIG, REPO, alert_rules
from pydantic import SecretStr
from pydantic.fields import FieldInfo

from service.settings import Settings

OPERATIONS = DOCS / "operations.md"
RUNBOOK = DOCS / "runbook.md"
COMPOSE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / ".env.example"
# Every rule's runbook link: one base (an external label), the runbook page, the alert's heading.
RUNBOOK_BASE_LABEL = "runbook_base_url"
RUNBOOK_BASE = "{{ $externalLabels." + RUNBOOK_BASE_LABEL + " }}"
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
    names[SecretStr] = "secret text"
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


def _operations() -> str:
    return OPERATIONS.read_text()


def test_the_configuration_table_is_the_settings_class() -> None:
    section = _operations()
    assert TABLE_START in section and TABLE_END in section
    table = section.split(TABLE_START)[1].split(TABLE_END)[0].strip()
    expected = render_settings_table()
    assert table == expected, (
        "docs/operations.md configuration table is out of date; rewrite it with "
        "`.venv/bin/python tests/deploy/test_deploy_docs.py --write`"
    )


def test_the_table_lists_every_field_once() -> None:
    """Independent of the rendering: the variables in the table are exactly the fields."""
    table = _operations().split(TABLE_START)[1].split(TABLE_END)[0]
    listed = re.findall(r"^\| `ANOMALY_([A-Z0-9_]+)` \|", table, flags=re.MULTILINE)
    assert sorted(listed) == sorted(name.upper() for name in Settings.model_fields)


def _runbook_entry(heading: str) -> str:
    """The text under a runbook heading, up to the next heading of any level."""
    text = RUNBOOK.read_text()
    return re.split(r"^#{1,6} ", text.split(f"### {heading}\n", 1)[1], flags=re.MULTILINE)[0]


def test_every_alert_links_its_runbook_entry_through_the_one_base() -> None:
    anchors = github_anchors(RUNBOOK.read_text())
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"]
        anchor = rule["alert"].lower()
        assert url == f"{RUNBOOK_BASE}/docs/runbook.md#{anchor}", rule["alert"]
        assert anchor in anchors, f"{rule['alert']}: docs/runbook.md has no heading for #{anchor}"
        entry = _runbook_entry(anchors[anchor])
        assert "**Means:**" in entry and "**Do:**" in entry, rule["alert"]


def _env_example() -> dict[str, str]:
    pairs = re.findall(r"^([A-Z_]+)=(.*)$", ENV_EXAMPLE.read_text(), flags=re.MULTILINE)
    return dict(pairs)


def test_the_runbook_base_is_configured_once_and_links_are_absolute() -> None:
    """prometheus.yml takes the base from the environment, compose passes .env's value and
    turns on the expansion, and the example value makes every link an absolute URL whose
    path is docs/runbook.md in this repository."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["global"]["external_labels"][RUNBOOK_BASE_LABEL] == "${RUNBOOK_BASE_URL}"
    prometheus = yaml.safe_load(COMPOSE.read_text())["services"]["prometheus"]
    assert "--enable-feature=expand-external-labels" in prometheus["command"]
    assert prometheus["environment"]["RUNBOOK_BASE_URL"].startswith("${RUNBOOK_BASE_URL:?")
    base = _env_example()["RUNBOOK_BASE_URL"]
    assert re.fullmatch(r"https://[^/\s]+/\S*[^/]", base), base
    for rule in alert_rules():
        url = rule["annotations"]["runbook_url"].replace(RUNBOOK_BASE, base)
        assert url.startswith(f"{base}/docs/runbook.md#"), url
    assert RUNBOOK.is_file()


def test_the_operations_docs_have_quick_start_architecture_and_runbook() -> None:
    operations = _operations()
    for needle in (
        "cp .env.example .env",
        "docker compose up",
        "## Architecture",
        "## Runbook links in alerts",
        "promtool test rules",
    ):
        assert needle in operations, needle
    assert RUNBOOK.read_text().startswith("# Operations runbook\n")


def test_github_anchors_follow_github_s_rule() -> None:
    text = "# A: b (c)\n```\n# not a heading\n```\n## A: b (c)\n### x_y-z 2\n"
    assert github_anchors(text) == {
        "a-b-c": "A: b (c)",
        "a-b-c-1": "A: b (c)",
        "x_y-z-2": "x_y-z 2",
    }


def test_every_link_between_pages_lands_on_a_file_and_heading() -> None:
    pages = sorted(DOCS.glob("*.md"))
    assert {p.name for p in pages} >= {
        "usage.md", "training.md", "evaluation.md", "operations.md", "runbook.md",
        "recalibration.md", "performance.md",
    }  # fmt: skip
    for page in pages:
        for target, anchor in relative_links(page):
            assert target.exists(), f"{page.name}: {target} does not exist"
            if anchor:
                assert anchor in github_anchors(target.read_text()), f"{page.name}: #{anchor}"


def write_settings_table() -> None:
    text = OPERATIONS.read_text()
    before, rest = text.split(TABLE_START, 1)
    _, after = rest.split(TABLE_END, 1)
    OPERATIONS.write_text(f"{before}{TABLE_START}\n{render_settings_table()}\n{TABLE_END}{after}")


if __name__ == "__main__":
    if "--write" in sys.argv[1:]:
        write_settings_table()
    else:
        print(render_settings_table())
