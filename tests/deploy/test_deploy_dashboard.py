"""The Grafana dashboard and its provisioning: every panel queries something that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from promql_support import (
    DEPLOY,
    SERVICE_JOB,
    TARGET_LABELS,
    dashboard_panels,
    dashboard_queries,
    exposed_metrics,
    expr_names,
    load_dashboard,
    substitute_variables,
    variable_queries,
)

DASHBOARD = load_dashboard()
PANELS = list(dashboard_panels(DASHBOARD))
QUERIES = dashboard_queries(DASHBOARD)


def _query_id(item: tuple[str, str]) -> str:
    return item[0]


def test_variables_for_datasource_model_and_instance() -> None:
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("model", "instance"):
        variable = variables[name]
        assert variable["type"] == "query"
        assert variable["multi"] and variable["includeAll"]
        assert variable["allValue"] == ".*"
        assert variable["datasource"]["uid"] == "${datasource}"
    selectors = variable_queries(DASHBOARD)
    assert selectors["instance"][1] == "instance"
    assert selectors["model"] == ('anomaly_model_info{instance=~"$instance"}', "model")


@pytest.mark.parametrize("panel", PANELS, ids=lambda panel: panel["title"])
def test_every_panel_has_a_query_on_the_datasource_variable(panel: dict[str, Any]) -> None:
    targets = panel.get("targets", [])
    assert targets, "panel without a query"
    assert panel["datasource"]["uid"] == "${datasource}"
    for target in targets:
        assert target["expr"].strip()
        assert target["datasource"]["uid"] == "${datasource}"
    ref_ids = [target["refId"] for target in targets]
    assert len(ref_ids) == len(set(ref_ids))
    assert panel.get("description"), "say what the panel shows and which alert reads it"


def test_panel_ids_are_unique_and_the_grid_has_no_overlap() -> None:
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in DASHBOARD["panels"]:
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps another panel"
                cells.add((x, y))


@pytest.mark.parametrize("query", QUERIES, ids=_query_id)
def test_every_metric_a_query_reads_is_exposed_by_the_service(query: tuple[str, str]) -> None:
    exposed = exposed_metrics()
    names = expr_names(query[1])
    assert names.metrics
    for metric, labels in names.selector_labels.items():
        if metric == "up":
            assert f'job="{SERVICE_JOB}"' in query[1]
            continue
        assert metric in exposed, f"{metric} is not exposed by service/metrics.py"
        unknown = labels - exposed[metric].labels - TARGET_LABELS
        assert not unknown, f"{metric} has no label {sorted(unknown)}"
    known = set().union(*(exposed[m].labels for m in names.metrics if m in exposed))
    assert names.grouping_labels <= known | TARGET_LABELS


@pytest.mark.parametrize("query", QUERIES, ids=_query_id)
def test_every_query_follows_the_variables(query: tuple[str, str]) -> None:
    """Instance (and model, where the metric has it) filter every selector; ranges come from
    Grafana ($__rate_interval, $__range), never hard-coded."""
    exposed = exposed_metrics()
    expr = query[1]
    for match in re.finditer(r"(anomaly_\w+|up)\{([^}]*)\}", expr):
        metric, matchers = match.groups()
        assert 'instance=~"$instance"' in matchers, f"{metric} ignores $instance"
        if metric != "up" and "model" in exposed[metric].labels:
            assert 'model=~"$model"' in matchers, f"{metric} ignores $model"
    for window in re.findall(r"\[([^\]]*)\]", expr):
        assert window in {"$__rate_interval", "$__range"}, window


def test_top_sensors_are_bounded_with_topk() -> None:
    reading = [expr for _, expr in QUERIES if "anomaly_top_sensor_contributions_total" in expr]
    assert reading
    for expr in reading:
        match = re.match(r"\s*topk\((\d+),", expr)
        assert match and 1 <= int(match.group(1)) <= 20, expr


def test_every_collector_of_the_service_is_on_the_dashboard() -> None:
    shown = set().union(*(expr_names(expr).metrics for _, expr in QUERIES))
    families = {
        re.sub(r"_(total|bucket|count|sum|created)$", "", name) for name in exposed_metrics()
    }
    shown_families = {re.sub(r"_(total|bucket|count|sum)$", "", name) for name in shown}
    missing = families - shown_families
    assert not missing, f"collectors with no panel: {sorted(missing)}"


def test_the_issue_s_panels_exist() -> None:
    titles = " | ".join(panel["title"].lower() for panel in PANELS)
    for words in (
        "error percentiles vs threshold",
        "threshold version",
        "threshold drift",
        "ks statistic",
        "anomalies and alerts",
        "top sensors",
        "operator labels",
        "review queue",
        "pending threshold approvals",
        "requests /s",
        "latency p50 / p99",
        "error responses by status",
        "loaded models",
    ):
        assert words in titles, words


def test_promtool_parses_every_query(tmp_path: Path) -> None:
    """Each query, with the variables as Grafana fills them, as a recording rule: promtool
    then parses it with Prometheus's own parser."""
    promtool = shutil.which("promtool") or "/usr/bin/promtool"
    if not Path(promtool).exists():
        pytest.skip("promtool is not installed (Debian package prometheus; .ci/run installs it)")
    exprs = [substitute_variables(e, rate_interval="1m", range_="1h") for _, e in QUERIES]
    exprs += [selector for selector, _ in variable_queries(DASHBOARD).values()]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {
                        "record": f"dashboard:query_{i}:check",
                        "expr": expr.replace("$instance", ".*"),
                    }
                    for i, expr in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_provisioning_points_at_prometheus_and_the_dashboard_folder() -> None:
    datasources = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    assert [(d["type"], d["uid"], d["url"]) for d in datasources] == [
        ("prometheus", "prometheus", "http://prometheus:9090")
    ]
    variables = {v["name"]: v for v in DASHBOARD["templating"]["list"]}
    assert variables["datasource"]["current"]["value"] == "prometheus"
    providers = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/dashboards/anomaly-service.yml").read_text()
    )["providers"]
    compose = yaml.safe_load((DEPLOY.parent / "docker-compose.yml").read_text())
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == providers[0]["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
