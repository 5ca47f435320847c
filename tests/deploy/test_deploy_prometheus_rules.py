"""The Prometheus config, the alert rules and their promtool unit tests, and Alertmanager."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from promql_support import (
    PROMETHEUS_CONFIG,
    REPO,
    RULE_TESTS_DIR,
    SERVICE_JOB,
    TARGET_LABELS,
    alert_rules,
    exposed_metrics,
    expr_names,
    load_rules,
    recorded_names,
    rule_files,
    shorten_rule_file,
)

ALERTMANAGER_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"
SEVERITIES = {"critical", "warning", "info"}


def _tool(name: str, why: str) -> str:
    path = shutil.which(name) or (f"/usr/bin/{name}" if Path(f"/usr/bin/{name}").exists() else None)
    if path is None:
        pytest.skip(f"{name} is not installed ({why}; .ci/run installs it from Debian)")
    return path


@pytest.fixture(scope="module")
def promtool() -> str:
    return _tool("promtool", "Debian package prometheus")


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=cwd)


def test_promtool_checks_the_config_with_its_rules(promtool: str, tmp_path: Path) -> None:
    """The config as compose mounts it, with rule_files pointed at the repository's rules."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    config["rule_files"] = [str(path) for path in rule_files()]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    result = _run(promtool, "check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(load_rules())} rules found" in result.stdout


def test_config_scrapes_the_service_job_and_sends_alerts(promtool: str) -> None:
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs[SERVICE_JOB]["static_configs"][0]["targets"] == ["service:8000"]
    assert jobs[SERVICE_JOB].get("metrics_path", "/metrics") == "/metrics"
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]


def test_promtool_checks_the_rules(promtool: str) -> None:
    result = _run(promtool, "check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rule_unit_tests_pass(promtool: str) -> None:
    test_files = sorted(RULE_TESTS_DIR.glob("*.test.yml"))
    assert test_files
    result = _run(promtool, "test", "rules", *map(str, test_files))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAILED" not in result.stdout


def test_promtool_unit_tests_catch_a_broken_rule(promtool: str, tmp_path: Path) -> None:
    """The unit tests bite: raising the threshold-drift bound to 30% makes them fail."""
    rules_dir = tmp_path / "rules"
    tests_dir = tmp_path / "tests"
    rules_dir.mkdir()
    tests_dir.mkdir()
    for path in rule_files():
        text = path.read_text()
        broken = text.replace(
            "abs(anomaly_threshold_drift_ratio) > 0.2", "abs(anomaly_threshold_drift_ratio) > 0.3"
        )
        (rules_dir / path.name).write_text(broken)
    assert any("> 0.3" in p.read_text() for p in rules_dir.iterdir())
    for path in RULE_TESTS_DIR.glob("*.test.yml"):
        shutil.copy(path, tests_dir / path.name)
    result = _run(promtool, "test", "rules", *map(str, sorted(tests_dir.iterdir())))
    assert result.returncode != 0
    assert "AnomalyThresholdDrift" in result.stdout + result.stderr


def _unit_test_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for path in sorted(RULE_TESTS_DIR.glob("*.test.yml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            cases.extend(test.get("alert_rule_test", []))
    return cases


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_has_cases_that_fire_and_cases_that_must_not(rule: dict[str, Any]) -> None:
    cases = [case for case in _unit_test_cases() if case["alertname"] == rule["alert"]]
    assert any(case.get("exp_alerts") for case in cases), "no case where it fires"
    assert any(not case.get("exp_alerts") for case in cases), "no case where it must not fire"


@pytest.mark.parametrize("rule", alert_rules(), ids=lambda rule: rule["alert"])
def test_every_alert_says_what_to_do_and_links_its_runbook(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert len(annotations["description"].split()) >= 20, "description too thin to act on"
    # the base and the anchor's heading are checked in test_deploy_docs.py
    assert annotations["runbook_url"].endswith(f"/docs/runbook.md#{rule['alert'].lower()}")
    assert "for" in rule, "every alert waits before firing, so one bad scrape does not page"


def test_alert_names_are_unique() -> None:
    names = [rule["alert"] for rule in alert_rules()]
    assert len(names) == len(set(names))


def test_the_issue_s_alerts_all_exist() -> None:
    """Threshold drift, KS drift, pending approval, anomaly and alert rate, latency SLO,
    error responses, service down and no readings."""
    expressions = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    wanted = {
        "AnomalyThresholdDrift": "anomaly_threshold_drift_ratio",
        "AnomalyDistributionDrift": "anomaly_drift_ks_pvalue",
        "AnomalyThresholdPendingApproval": "anomaly_threshold_pending_approvals",
        "AnomalyRateHigh": "model:anomaly_flagged:ratio_rate5m",
        "AnomalyAlertRateHigh": "model:anomaly_alerted:ratio_rate5m",
        "AnomalyScoringLatencyHigh": "anomaly_http_request_duration_seconds_bucket",
        "AnomalyServiceErrors": 'status=~"5.."',
        "AnomalyServiceDown": f'up{{job="{SERVICE_JOB}"}}',
        "AnomalyServiceNoReadings": "anomaly_readings_scored_total",
        "AnomalyServiceNoRecalibrationLeader": "anomaly_recalibration_leader",
        "AnomalyServiceNotReady": "anomaly_readiness_failing",
    }
    for alert, needle in wanted.items():
        assert needle in expressions[alert], alert


@pytest.mark.parametrize(
    "rule", load_rules(), ids=lambda rule: rule.get("alert") or rule.get("record")
)
def test_every_series_a_rule_reads_is_exposed_by_the_service(rule: dict[str, Any]) -> None:
    exposed = exposed_metrics()
    recorded = recorded_names()
    names = expr_names(rule["expr"])
    assert names.metrics, "no metric read"
    for metric, labels in names.selector_labels.items():
        if metric in recorded:
            continue
        if metric == "up":
            assert labels <= TARGET_LABELS
            continue
        assert metric in exposed, f"{metric} is not exposed by service/metrics.py"
        unknown = labels - exposed[metric].labels - TARGET_LABELS
        assert not unknown, f"{metric} has no label {sorted(unknown)}"
    all_labels = set().union(
        *(exposed[m].labels for m in names.metrics if m in exposed), TARGET_LABELS, {"model"}
    )
    assert names.grouping_labels <= all_labels


def test_recording_rules_follow_the_level_metric_operations_convention() -> None:
    for name in recorded_names():
        assert re.fullmatch(r"[a-z_]+:[a-z_]+:[a-z0-9_]+", name), name


def test_shortened_rules_still_pass_promtool(promtool: str, tmp_path: Path) -> None:
    """The copy the live test loads (durations divided) is valid too."""
    for path in rule_files():
        short = shorten_rule_file(path.read_text(), for_divisor=120, range_divisor=30)
        (tmp_path / path.name).write_text(short)
        assert "[5m]" not in short and "for: 30m" not in short
    result = _run(promtool, "check", "rules", *map(str, sorted(tmp_path.iterdir())))
    assert result.returncode == 0, result.stdout + result.stderr


# --- Alertmanager --------------------------------------------------------------------


def test_amtool_checks_the_alertmanager_config() -> None:
    amtool = _tool("amtool", "Debian package prometheus-alertmanager")
    result = _run(amtool, "check-config", str(ALERTMANAGER_CONFIG))
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_routes_and_inhibitions_name_real_alerts_and_severities() -> None:
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    receivers = {receiver["name"] for receiver in config["receivers"]}
    assert config["route"]["receiver"] in receivers
    alert_names = {rule["alert"] for rule in alert_rules()}
    matchers = [m for route in config["route"].get("routes", []) for m in route["matchers"]]
    for route in config["route"].get("routes", []):
        assert route["receiver"] in receivers
    for inhibit in config.get("inhibit_rules", []):
        matchers += inhibit["source_matchers"] + inhibit["target_matchers"]
    for matcher in matchers:
        label, op, value = re.fullmatch(r'(\w+)(=~|=)"([^"]*)"', matcher).groups()  # type: ignore[union-attr]
        if label == "alertname":
            names = value.split("|") if op == "=~" else [value]
            assert set(names) <= alert_names, matcher
        elif label == "severity":
            assert value in SEVERITIES


def test_inhibitions_stay_within_one_deployment() -> None:
    """Deployments may share the job name in different namespaces (docs/high-availability.md):
    an inhibition matches source and target on both, or one deployment's replica down would
    silence another's alerts. The alerts it holds back keep both labels to be matched on."""
    config = yaml.safe_load(ALERTMANAGER_CONFIG.read_text())
    rules = {rule["alert"]: rule["expr"] for rule in alert_rules()}
    for inhibit in config["inhibit_rules"]:
        assert {"job", "namespace"} <= set(inhibit["equal"]) or "instance" in inhibit["equal"]
        for matcher in inhibit["target_matchers"]:
            names = re.fullmatch(r'alertname=~?"([^"]*)"', matcher)
            assert names, matcher
            for name in names.group(1).split("|"):
                for grouping in re.findall(r"\bby \(([^)]*)\)", rules[name]):
                    kept = {label.strip() for label in grouping.split(",")}
                    assert set(inhibit["equal"]) <= kept, (name, grouping)
