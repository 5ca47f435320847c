"""Reading the deploy files the way Prometheus and Grafana do, for the deploy and live tests.

PromQL is not parsed in full: metric names and label names are pulled out of expressions
with the few rules that hold for the expressions we write (identifiers that are not
functions, keywords, label names or durations). promtool parses the same expressions for
real in the tests, so a syntax error cannot hide behind these shortcuts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

from service.metrics import Metrics
from service.scoring.registry import LoadedModel, ModelRegistry
from service.scoring.scored import ScoredBatch
from service.scoring.streams import StreamStates
from service.scoring.thresholds import ThresholdBoard, ThresholdSnapshot

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
RULES_DIR = DEPLOY / "prometheus" / "rules"
RULE_TESTS_DIR = DEPLOY / "prometheus" / "tests"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "anomaly-service.json"
SERVICE_JOB = "anomaly-service"

# Labels Prometheus attaches to every scraped series, and the namespace that Kubernetes
# discovery (the Prometheus Operator's, or a relabelling of __meta_kubernetes_namespace)
# attaches; without it, grouping by it groups by nothing.
TARGET_LABELS = frozenset({"job", "instance", "namespace"})
KEYWORDS = frozenset(
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
        "unless", "offset", "bool", "inf", "nan", "le", "atan2",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_IDENT = re.compile(r"(?<![\w$.:])([A-Za-z_:][A-Za-z0-9_:]*)(?![\w:])(?!\s*\()")
_DURATION_UNIT = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")


@dataclass(frozen=True)
class ExposedMetric:
    """A sample name the service exposes and the labels it carries."""

    name: str
    labels: frozenset[str]


def exposed_metrics() -> dict[str, ExposedMetric]:
    """Every sample name service/metrics.py can expose (``_total``, ``_bucket``, ... included)."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase):
            label_names = collector._labelnames  # noqa: SLF001 - no public accessor
            if label_names:
                collector.labels(*["x"] * len(label_names))
    _feed_custom_collectors(metrics)
    exposed: dict[str, ExposedMetric] = {}
    for family in registry.collect():
        for sample in family.samples:
            labels = frozenset(sample.labels)
            known = exposed.get(sample.name)
            exposed[sample.name] = ExposedMetric(
                sample.name, labels if known is None else known.labels | labels
            )
    return exposed


def _feed_custom_collectors(metrics: Metrics) -> None:
    """One request, one scored reading and one served model through the custom collectors'
    public API, so each of their series has a sample."""
    metrics.requests.add("x", "GET", 200, 0.1)
    model = cast(
        LoadedModel,
        SimpleNamespace(
            name="x", version="1", sensors=["x"], window=1, manifest=SimpleNamespace(n_sensors=1)
        ),
    )
    one = np.ones(1)
    metrics.scoring.add(
        ScoredBatch(
            model=model,
            stream_id="x",
            threshold=ThresholdSnapshot(1.0, 1, 1.0),
            seq_start=0,
            id_prefix="r-",
            reading_ids=None,
            received_at=0.0,
            timestamps=None,
            warming=0,
            history=0,
            values=np.ones((1, 1), dtype=np.float32),
            errors=one,
            scores=one,
            anomalies=np.ones(1, dtype=bool),
            smoothed=one,
            states=np.zeros(1, dtype=np.int8),
            top_index=np.zeros((1, 1), dtype=np.intp),
            top_share=np.ones((1, 1)),
            squared=np.ones((1, 1), dtype=np.float32),
            reconstruction=np.ones((1, 1), dtype=np.float32),
            alerts_raised=1,
        )  # fmt: skip
    )
    board = ThresholdBoard()
    board.set("x", ThresholdSnapshot(1.0, 1, 1.0))
    models = cast(ModelRegistry, SimpleNamespace(models=lambda: [model], refused={}))
    metrics.state.watch(board, StreamStates(1, 60), models)


@dataclass
class ExprNames:
    """Metric names in an expression, the label names each selector matches on, and the
    label names its grouping clauses use."""

    metrics: set[str] = field(default_factory=set)
    selector_labels: dict[str, set[str]] = field(default_factory=dict)
    grouping_labels: set[str] = field(default_factory=set)


def expr_names(expr: str) -> ExprNames:
    names = ExprNames()
    text = _STRING.sub('""', expr)
    for match in _SELECTOR.finditer(text):
        metric = match.group(1)
        labels = {m.group(1) for m in _MATCHER.finditer(match.group(2))}
        if metric:
            names.selector_labels.setdefault(metric, set()).update(labels)
        elif "__name__" not in labels:
            raise ValueError(f"selector without a metric name in {expr!r}")
    text = _SELECTOR.sub(lambda m: f" {m.group(1) or ''} ", text)
    for match in _GROUPING.finditer(text):
        names.grouping_labels.update(
            label.strip() for label in match.group(2).split(",") if label.strip()
        )
    text = _GROUPING.sub(" ", text)
    text = _RANGE.sub(" ", text)
    for match in _IDENT.finditer(text):
        token = match.group(1)
        if token.lower() in KEYWORDS:
            continue
        names.metrics.add(token)
    for metric in names.metrics:
        names.selector_labels.setdefault(metric, set())
    return names


# --- rules -----------------------------------------------------------------------------


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def load_rules() -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = []
    for path in rule_files():
        for group in yaml.safe_load(path.read_text())["groups"]:
            rules.extend(group["rules"])
    return rules


def alert_rules() -> list[dict[str, Any]]:
    return [rule for rule in load_rules() if "alert" in rule]


def recorded_names() -> set[str]:
    return {rule["record"] for rule in load_rules() if "record" in rule}


def parse_duration(text: str) -> float:
    """Seconds in a Prometheus duration such as ``1h30m`` or ``500ms``."""
    seconds = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    parts = _DURATION_UNIT.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(int(number) * seconds[unit] for number, unit in parts)


def format_duration(seconds: float) -> str:
    """The shortest Prometheus spelling of a duration, rounded to whole milliseconds."""
    millis = max(1, round(seconds * 1000))
    for unit, size in (("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"


_EXPR_DURATION = re.compile(r"(\[\s*)([0-9a-z]+)(\s*(?::[0-9a-z]*)?\])|(\boffset\s+)([0-9a-z]+)")


def shorten_rule_file(
    text: str, *, for_divisor: float, range_divisor: float, min_for_s: float = 0.0
) -> str:
    """The rule file with every ``for:`` divided by ``for_divisor`` (but kept at least
    ``min_for_s``) and every range and offset in expressions divided by ``range_divisor``:
    the same rules on a test clock.

    >>> print(shorten_rule_file("expr: rate(x[5m] offset 1h) > 0\\nfor: 10m",
    ...                         for_divisor=120, range_divisor=30))
    expr: rate(x[10s] offset 2m) > 0
    for: 5s
    """

    def scale_range(match: re.Match[str]) -> str:
        if match.group(2) is not None:
            scaled = format_duration(parse_duration(match.group(2)) / range_divisor)
            return f"{match.group(1)}{scaled}{match.group(3)}"
        scaled = format_duration(parse_duration(match.group(5)) / range_divisor)
        return f"{match.group(4)}{scaled}"

    lines = []
    for line in text.splitlines():
        stripped = line.lstrip()
        if stripped.startswith("for:"):
            indent = line[: len(line) - len(stripped)]
            value = stripped.split(":", 1)[1].strip()
            seconds = max(parse_duration(value) / for_divisor, min_for_s)
            line = f"{indent}for: {format_duration(seconds)}"
        elif not stripped.startswith("#"):
            line = _EXPR_DURATION.sub(scale_range, line)
        lines.append(line)
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


# --- dashboard -------------------------------------------------------------------------


def load_dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel that shows data (rows are containers, their nested panels count)."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
    ]


_LABEL_VALUES = re.compile(r"^label_values\((?:(.*),\s*)?([A-Za-z_][A-Za-z0-9_]*)\)$")


def variable_queries(dashboard: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """Query variables as (series selector, label) from ``label_values(selector, label)``."""
    found: dict[str, tuple[str, str]] = {}
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        text = query["query"] if isinstance(query, dict) else query
        match = _LABEL_VALUES.match(text.strip())
        if match is None or match.group(1) is None:
            raise ValueError(f"variable {variable['name']} is not label_values(selector, label)")
        found[variable["name"]] = (match.group(1), match.group(2))
    return found


def substitute_variables(expr: str, *, rate_interval: str, range_: str) -> str:
    """What Grafana sends for "All" on every variable and the given interval and range."""
    return (
        expr.replace("$__rate_interval", rate_interval)
        .replace("$__range", range_)
        .replace('"$model"', '".*"')
        .replace('"$instance"', '".*"')
    )
