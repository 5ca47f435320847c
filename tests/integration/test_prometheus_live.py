"""The dashboard and the alert rules, proven against a real Prometheus scraping the service.

One scenario, in order (about 80 s):

1. ``python -m service`` on a loopback port with a temporary store, test API keys, a 2 s
   recalibration interval and a small stream capacity; Prometheus (Debian's
   /usr/bin/prometheus) scrapes it every second and evaluates the repository's rule files,
   loaded as a copy on a test clock: every ``for:`` divided by 120 (at least 10 s), every
   range and offset divided by 30 (see ``shorten_rule_file`` in tests/deploy).
2. Normal run: steady normal traffic, one refused request per second, operator feedback
   confirming normal readings, recalibration and drift checks in the background. No alert
   may fire, or even be pending at the end.
3. Drift scenario: spiked readings in two streams, and confirmed-normal readings from a
   shifted distribution (errors 2.6x). The recalibrator holds the big threshold move for
   approval (AnomalyThresholdPendingApproval fires), the KS test flags drift
   (AnomalyDistributionDrift), an admin approves the move (AnomalyThresholdDrift) and the
   flagged share is far above usual (AnomalyRateHigh).
4. Every PromQL expression of the dashboard returns data, every series the rules read
   exists, every rule evaluated without error.
5. The service stops: AnomalyServiceDown fires.

The test model is the conftest's scripted one (window 1, 4 sensors, error = mean of the
squared readings), so every error and share of flagged readings is known in advance.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import numpy as np
import pytest
from prometheus_harness import (
    PrometheusAPI,
    find_prometheus,
    has_finite_value,
    start_prometheus,
    start_service,
    wait_for,
    write_prometheus_config,
)
from service_process import free_port

pytestmark = pytest.mark.integration


def _promql_support() -> ModuleType:
    """tests/deploy/promql_support.py (one copy, whichever test directory imports it first)."""
    loaded = sys.modules.get("promql_support")
    if loaded is not None:
        return loaded
    path = Path(__file__).resolve().parents[1] / "deploy" / "promql_support.py"
    spec = importlib.util.spec_from_file_location("promql_support", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["promql_support"] = module
    spec.loader.exec_module(module)
    return module


support = _promql_support()

MODEL = "test-plant"
N_SENSORS = 4
# 99th percentile of chi2(4)/4: the error law of N(0, 1) readings on the scripted model.
THRESHOLD = 13.2767 / 4
ADMIN_KEY = "admin-5d1f0e2c9b8a7f6e5d4c3b2a19080706"
OPERATOR_KEY = "operator-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
API_KEYS = [
    {"name": "live-admin", "scopes": ["admin"], "key": ADMIN_KEY},
    {"name": "live-operator", "scopes": ["feedback"], "key": OPERATOR_KEY},
]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}

FOR_DIVISOR = 120
RANGE_DIVISOR = 30
# Prometheus applies scrape targets up to 5 s after it starts while rules evaluate at once:
# a shorter `for:` would let AnomalyServiceDown (absent(up)) fire before the first scrape.
MIN_FOR_S = 10.0
RATE_INTERVAL = "15s"  # what Grafana's $__rate_interval is for a 1 s scrape, with margin
DASHBOARD_RANGE = "5m"  # longer than the whole scenario
NORMAL_RUN_S = 25.0  # longer than the longest shortened `for:` (15 s) plus its ranges
DRIFT_NOISE = 1.6  # confirmed normals whose errors are 2.56x the reference law
SPIKE = 10.0  # added to sensor s0: error >= 25, far above any threshold in the test

DRIFT_ALERTS = {
    "AnomalyThresholdPendingApproval",
    "AnomalyDistributionDrift",
    "AnomalyThresholdDrift",
    "AnomalyRateHigh",
}


class Traffic(threading.Thread):
    """Ten batches of ten readings a second over five streams, and one refused request a
    second; with ``spiking`` set, two of the five streams carry a spike on sensor s0."""

    def __init__(self, base_url: str) -> None:
        super().__init__(daemon=True)
        self.client = httpx.Client(base_url=base_url, timeout=10)
        self.rng = np.random.default_rng(11)
        self.stop_event = threading.Event()
        self.spiking = False
        self.unexpected: list[str] = []
        self.batches = 0

    def run(self) -> None:
        try:
            while not self.stop_event.is_set():
                stream = self.batches % 5
                values = self.rng.normal(size=(10, N_SENSORS))
                if self.spiking and stream < 2:
                    values[:, 0] += SPIKE
                self._post({"stream_id": f"line-{stream}", "readings": values.tolist()}, 200)
                if self.batches % 10 == 0:
                    self._post({"stream_id": "bad-client", "reading": [1.0, 2.0]}, 422)
                self.batches += 1
                self.stop_event.wait(0.1)
        finally:
            self.client.close()

    def _post(self, body: dict[str, Any], expected: int) -> None:
        try:
            status = self.client.post("/v1/score", json=body).status_code
        except httpx.HTTPError as exc:
            self.unexpected.append(f"{body['stream_id']}: {exc!r}")
            return
        if status != expected:
            self.unexpected.append(f"{body['stream_id']}: {status}, expected {expected}")

    def stop(self) -> None:
        self.stop_event.set()
        self.join(timeout=15)


def _feedback_normal(client: httpx.Client, values: np.ndarray, stream: str) -> None:
    response = client.post(
        "/v1/feedback",
        json={"label": "normal", "readings": {"values": values.tolist(), "stream_id": stream}},
        headers=OPERATOR,
    )
    assert response.status_code == 201, response.text


def _shortened_rules() -> dict[str, str]:
    return {
        path.name: support.shorten_rule_file(
            path.read_text(),
            for_divisor=FOR_DIVISOR,
            range_divisor=RANGE_DIVISOR,
            min_for_s=MIN_FOR_S,
        )
        for path in support.rule_files()
    }


def test_dashboard_and_alert_rules_against_a_real_prometheus(
    tmp_path: Path, write_test_artifact: Any
) -> None:
    binary = find_prometheus()
    if binary is None:
        pytest.skip("/usr/bin/prometheus is not installed (.ci/run installs Debian's prometheus)")
    models_dir = tmp_path / "models"
    write_test_artifact(models_dir, threshold=THRESHOLD, n_sensors=N_SENSORS)
    service_port, prometheus_port = free_port(), free_port()
    settings = {
        "models_dir": str(models_dir),
        "store_path": str(tmp_path / "feedback.sqlite3"),
        "api_keys": API_KEYS,
        "recalibration_interval_s": "2",
        "recalibration_label_trigger": "0",
        "recalibration_min_samples": "50",
        "drift_min_samples": "50",
        "stream_capacity": "20",
        "review_audit_size": "10",
    }
    config = write_prometheus_config(
        tmp_path,
        service_port=service_port,
        rule_texts=_shortened_rules(),
        job=support.SERVICE_JOB,
    )
    base_url = f"http://127.0.0.1:{service_port}"
    rng = np.random.default_rng(7)

    with (
        start_service(tmp_path, service_port, settings) as service,
        httpx.Client(base_url=base_url, timeout=10) as client,
    ):

        def service_ready() -> bool:
            assert service.alive(), f"service exited:\n{service.output()}"
            try:
                return client.get("/readyz").status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(service_ready, timeout=90, what="the service's /readyz")

        prometheus_started = time.time()
        with start_prometheus(binary, tmp_path, config, prometheus_port) as prometheus:
            api = PrometheusAPI(prometheus_port)
            traffic = Traffic(base_url)
            try:

                def prometheus_ready() -> bool:
                    assert prometheus.alive(), f"prometheus exited:\n{prometheus.output()}"
                    return api.ready() and api.target_up()

                wait_for(prometheus_ready, timeout=30, what="Prometheus scraping the service")
                run_started = time.time()
                traffic.start()

                # ---- 2. normal run ---------------------------------------------------
                for stream in range(30):  # more streams than the capacity: LRU evictions
                    reading = rng.normal(size=N_SENSORS).tolist()
                    response = client.post(
                        "/v1/score", json={"stream_id": f"one-off-{stream}", "reading": reading}
                    )
                    assert response.status_code == 200, response.text
                _feedback_normal(client, rng.normal(size=(300, N_SENSORS)), "audit-normal")
                queue = client.get("/v1/feedback/review-queue", headers=OPERATOR)
                assert queue.status_code == 200, queue.text
                wait_for(
                    lambda: has_finite_value(api.query("anomaly_drift_ks_pvalue")),
                    timeout=20,
                    what="a drift check on the confirmed normals",
                )
                time.sleep(max(0.0, run_started + NORMAL_RUN_S - time.time()))
                normal_ended = time.time()
                fired = api.query_range(
                    'ALERTS{alertstate="firing"}', prometheus_started, normal_ended, 1
                )
                assert fired == [], f"alerts fired during the normal run: {fired}"
                assert api.alerts() == [], f"alerts pending after the normal run: {api.alerts()}"
                runs = client.get("/v1/admin/recalibration-runs", headers=ADMIN).json()
                assert runs and runs[0]["n_samples"] >= 300, runs

                # ---- 3. drift scenario -----------------------------------------------
                traffic.spiking = True
                shifted = DRIFT_NOISE * rng.normal(size=(400, N_SENSORS))
                _feedback_normal(client, shifted, "audit-shifted")
                wait_for(
                    lambda: "AnomalyThresholdPendingApproval" in api.firing(),
                    timeout=40,
                    what="AnomalyThresholdPendingApproval to fire",
                )
                drift = client.get(f"/v1/drift/{MODEL}", headers=OPERATOR)
                assert drift.status_code == 200, drift.text
                assert drift.json()["recommendation"] in {"recalibrate", "retrain"}, drift.json()
                history = client.get(f"/v1/admin/thresholds/{MODEL}", headers=ADMIN).json()
                pending = history["current"]["pending"]
                assert pending is not None, history
                assert pending["candidate"] / history["current"]["value"] - 1 > 0.2
                approved = client.post(
                    f"/v1/admin/pending-thresholds/{pending['id']}/approve",
                    json={"reason": "shifted normal confirmed on site"},
                    headers=ADMIN,
                )
                assert approved.status_code == 201, approved.text
                client.get("/v1/feedback/review-queue", headers=OPERATOR)
                wait_for(
                    lambda: DRIFT_ALERTS - {"AnomalyThresholdPendingApproval"} <= api.firing(),
                    timeout=45,
                    what=f"{sorted(DRIFT_ALERTS)} to fire",
                )
                # Alerts that fired at any point since the normal run, and those firing now.
                fired_names = api.firing() | {
                    series["metric"]["alertname"]
                    for series in api.query_range(
                        'ALERTS{alertstate="firing"}', normal_ended, time.time(), 1
                    )
                }
                assert fired_names == DRIFT_ALERTS, fired_names

                # ---- 4. every dashboard query, every series the rules read, rule health
                dashboard = support.load_dashboard()
                empty = []
                for title, expr in support.dashboard_queries(dashboard):
                    query = support.substitute_variables(
                        expr, rate_interval=RATE_INTERVAL, range_=DASHBOARD_RANGE
                    )
                    result = api.query(query)
                    if not has_finite_value(result):
                        empty.append(f"{title}: {query} -> {result}")
                for name, (selector, label) in support.variable_queries(dashboard).items():
                    query = support.substitute_variables(
                        selector, rate_interval=RATE_INTERVAL, range_=DASHBOARD_RANGE
                    )
                    values = {s["metric"].get(label) for s in api.query(query)}
                    if not values - {None}:
                        empty.append(f"variable {name}: {selector} has no {label}")
                assert not empty, "dashboard queries without data:\n" + "\n".join(empty)

                missing = []
                for rule in support.load_rules():
                    names = support.expr_names(rule["expr"])
                    for metric, labels in names.selector_labels.items():
                        if not api.query(f"count({metric})"):
                            missing.append(f"{rule.get('alert') or rule['record']}: {metric}")
                        for label in labels:
                            if not api.query(f'count({metric}{{{label}!=""}})'):
                                missing.append(f"{metric} has no series with label {label}")
                assert not missing, "series the rules read do not exist:\n" + "\n".join(missing)

                rules = api.rules()
                assert len(rules) == len(support.load_rules())
                unhealthy = [
                    f"{r['name']}: {r['health']} {r.get('lastError', '')}"
                    for r in rules
                    if r["health"] != "ok" or r.get("lastError")
                ]
                assert not unhealthy, unhealthy

                # ---- 5. the service goes away ----------------------------------------
                traffic.stop()
                assert traffic.unexpected == [], traffic.unexpected[:10]
                service.stop()
                wait_for(
                    lambda: "AnomalyServiceDown" in api.firing(),
                    timeout=30,
                    what="AnomalyServiceDown to fire",
                )
            finally:
                traffic.stop_event.set()
                if traffic.is_alive():
                    traffic.join(timeout=15)
                api.close()
