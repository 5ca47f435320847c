"""The console's browser tests: a plant-like scripted model, the keys, a service process
serving it, Debian's chromium driven by Playwright (no browser download), and a tab that
records what a test must find absent."""

from __future__ import annotations

import importlib.util
import json
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
import torch
from conftest import WindowMean
from service_process import ServiceProcess

from service.scoring.artifact import torchscript_deprecation_silenced
from service.scoring.artifact_writer import write_artifact

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

MODEL = "boiler-feed"
SENSORS = ["feed_flow", "drum_level", "bearing_temp", "motor_current", "vibration", "outlet_temp"]
MEAN = np.array([52.0, 80.0, 61.5, 145.0, 0.8, 221.0])
SCALE = np.array([2.0, 1.5, 0.9, 4.0, 0.05, 3.0])
FAULTY = SENSORS.index("bearing_temp")

ADMIN_KEY = "console-admin-5b7e1c9a3f2d4e6b8a0c1d2e3f4a5b6c"
OPERATOR_KEY = "console-operator-9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"
SCADA_KEY = "console-scada-0f1e2d3c4b5a69788796a5b4c3d2e1f0"
API_KEYS = [
    {"name": "alice-admin", "scopes": ["admin"], "key": ADMIN_KEY},
    {"name": "olga-operator", "scopes": ["feedback"], "key": OPERATOR_KEY},
    {"name": "scada-bridge", "scopes": ["score"], "key": SCADA_KEY},
]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
OPERATOR = {"Authorization": f"Bearer {OPERATOR_KEY}"}
SCADA = {"Authorization": f"Bearer {SCADA_KEY}"}

PROBLEMS = "https://sensor-anomaly-service.dev/problems/"
PROBLEM_JSON = "application/problem+json"
TABLET = {"width": 820, "height": 1180}
DESKTOP = {"width": 1280, "height": 900}

CHROMIUM = shutil.which("chromium")
BROWSER_TESTS = [
    pytest.mark.integration,
    pytest.mark.skipif(
        CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
    ),
    pytest.mark.skipif(
        importlib.util.find_spec("playwright") is None,
        reason="playwright is not installed (pip install -e '.[dev]')",
    ),
]
"""Every browser test module's marks: it runs only where chromium and Playwright are."""
# Nothing reaches past loopback; no component, sync or update traffic.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]


def service_env() -> dict[str, str]:
    return {
        "ANOMALY_API_KEYS": json.dumps(API_KEYS),
        "ANOMALY_RECALIBRATION_ENABLED": "false",  # the tests ask for runs themselves
        "ANOMALY_RECALIBRATION_MIN_SAMPLES": "20",
        "ANOMALY_RECALIBRATION_MAX_CHANGE": "0.05",  # a candidate waits for approval
        "ANOMALY_REVIEW_AUDIT_SIZE": "4",
    }


def build_plant_model(models_dir: Path) -> None:
    """A window-1 model expecting every sensor at its mean: a reading's per-sensor squared
    error is its z-score squared, so the faulty sensor is known to be the top one."""
    with torchscript_deprecation_silenced():
        scripted = torch.jit.script(WindowMean(MEAN, SCALE, 1))
    reference = np.random.default_rng(0).chisquare(1, size=(400, len(SENSORS)))
    write_artifact(
        models_dir / MODEL / "1",
        scripted=scripted,
        reference_errors=reference.astype(np.float32),
        manifest_fields={
            "name": MODEL,
            "version": "1",
            "sensors": SENSORS,
            "window": 1,
            "scaler": {"mean": MEAN.tolist(), "scale": SCALE.tolist()},
            "threshold": {
                "value": 2.5,
                "quantile": 0.99,
                "n_calibration": 400,
                "source": "scripted test model",
                "false_alarm_rate_ci": (0.004, 0.02),
            },
            "training_data_sha256": "0" * 64,
            "training": {"kind": "scripted test model"},
            "metrics": {"note": "no training"},
        },
    )


def normal_readings(rng: np.random.Generator, n: int, noise: float = 0.6) -> list[list[float]]:
    values = MEAN + SCALE * noise * rng.normal(size=(n, len(SENSORS)))
    rounded: list[list[float]] = np.round(values, 3).tolist()
    return rounded


def fault_readings(rng: np.random.Generator, n: int) -> list[list[float]]:
    values = MEAN + SCALE * 0.3 * rng.normal(size=(n, len(SENSORS)))
    values[:, FAULTY] += SCALE[FAULTY] * 9.0  # a bearing running hot
    rounded: list[list[float]] = np.round(values, 3).tolist()
    return rounded


def stamped(values: list[list[float]], start: float, step: float = 10.0) -> list[dict[str, Any]]:
    return [{"values": v, "timestamp": start + i * step} for i, v in enumerate(values)]


@contextmanager
def console_service(
    folder: Path, env: Mapping[str, str] | None = None, *, with_model: bool = True
) -> Iterator[ServiceProcess]:
    """The service on the plant model (on none, without ``with_model``), in ``folder``,
    started and stopped."""
    (folder / "models").mkdir(parents=True, exist_ok=True)
    if with_model:
        build_plant_model(folder / "models")
    running = ServiceProcess(
        folder / "models",
        folder / "store.sqlite3",
        folder / "server.log",
        env={**service_env(), **(env or {})},
    )
    try:
        running.wait_ready(probe="/readyz" if with_model else "/healthz")
        yield running
    finally:
        running.stop()


@contextmanager
def chromium() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


class Console:
    """One browser tab on the console, recording what a test must find absent: script
    errors, Content-Security-Policy violations and requests carrying a key in the URL."""

    def __init__(self, page: Page, server: ServiceProcess) -> None:
        self.page = page
        self.server = server
        self.problems: list[str] = []
        self.urls: list[str] = []
        self.allowed: list[str] = []  # console errors a test causes on purpose
        page.on("pageerror", lambda error: self.problems.append(f"script error: {error}"))
        page.on("console", self._console)
        page.on("request", lambda request: self.urls.append(request.url))

    def _console(self, message: Any) -> None:
        text = message.text
        # A refused request (4xx, or 503 when the service cannot serve) is logged by the
        # browser; the page handles it.
        refused = "status of 40" in text or "status of 503" in text
        if message.type == "error" and not refused and not any(a in text for a in self.allowed):
            self.problems.append(f"console error: {text}")

    def sign_in(self, key: str, view: str = "queue") -> None:
        self.page.goto(f"{self.server.url}/console#{view}")
        self.page.wait_for_selector("body[data-ready]")  # the script has wired the form
        self.page.fill("#api-key", key)
        self.page.press("#api-key", "Enter")
        self.page.wait_for_selector("#who:not([hidden])")

    def status(self) -> str:
        return self.page.inner_text("#status")

    def lose_reply(
        self,
        path: str,
        *,
        acted: bool,
        method: str = "POST",
        gateway: int | None = None,
        problem: str | None = None,
    ) -> None:
        """The next ``method`` request to ``path`` gets no reply: the service acts on it
        first when ``acted``, or never sees it. With ``gateway`` a reverse proxy answers in
        the service's place with that status: its own HTML page, as nginx does by default,
        or the problem document ``problem`` names, as deploy/nginx's configuration does."""

        done: list[bool] = []

        def cut(route: Any) -> None:
            if done or route.request.method != method:
                route.fallback()
                return
            done.append(True)
            if acted:
                route.fetch()
            if gateway is None:
                route.abort()
            elif problem is None:
                page = f"<html><body><h1>{gateway} Gateway</h1><hr>nginx</body></html>"
                route.fulfill(status=gateway, content_type="text/html", body=page)
            else:
                body = {"type": f"{PROBLEMS}{problem}", "status": gateway, "detail": problem}
                route.fulfill(status=gateway, content_type=PROBLEM_JSON, json=body)

        self.allowed.append("net::ERR_FAILED" if gateway is None else f"status of {gateway}")
        self.page.route(lambda url: url.split("?")[0].endswith(path), cut)

    def check_clean(self) -> None:
        assert not self.problems, self.problems
        for key in (ADMIN_KEY, OPERATOR_KEY):
            assert not [u for u in self.urls if key in u], "a key went into a URL"


@contextmanager
def console_tab(browser: Browser, server: ServiceProcess, **context: Any) -> Iterator[Console]:
    """A fresh browser context (desktop size, en-GB, Berlin time unless given) and its tab,
    checked clean at the end."""
    options = {
        "viewport": DESKTOP,
        "locale": "en-GB",
        "timezone_id": "Europe/Berlin",
        **context,
    }
    made = browser.new_context(**options)
    try:
        tab = Console(made.new_page(), server)
        yield tab
        tab.check_clean()
    finally:
        made.close()


def api(server: ServiceProcess, method: str, path: str, headers: dict[str, str], **kw: Any) -> Any:
    response = httpx.request(method, server.url + path, headers=headers, timeout=30, **kw)
    assert response.status_code < 300, (path, response.status_code, response.text)
    return response.json()


def score(server: ServiceProcess, stream: str, readings: list[dict[str, Any]]) -> Any:
    body = {"stream_id": stream, "model": MODEL, "readings": readings}
    return api(server, "POST", "/v1/score", SCADA, json=body)


def open_pending(server: ServiceProcess, seed: int) -> dict[str, Any]:
    """A candidate held for approval: confirmed normals, half of them above a threshold set
    low by hand, put it far above, beyond the 5 % applied without approval."""
    api(
        server,
        "POST",
        f"/v1/admin/thresholds/{MODEL}",
        ADMIN,
        json={"value": 0.3, "reason": "test set-up: a known starting point"},
    )
    rng = np.random.default_rng(seed)
    stream = f"calibration-{seed}"
    scored = score(server, stream, stamped(normal_readings(rng, 40), time.time() - 900))
    ids = [r["reading_id"] for r in scored["results"]]
    labels = {"label": "normal", "reading_ids": ids, "stream_id": stream}
    api(server, "POST", "/v1/feedback", OPERATOR, json=labels)
    run = api(server, "POST", f"/v1/admin/thresholds/{MODEL}/recalibrate", ADMIN)
    assert run["outcome"] == "pending", run
    pending: dict[str, Any] = api(server, "GET", f"/v1/admin/thresholds/{MODEL}", ADMIN)["current"][
        "pending"
    ]
    assert pending["id"] == run["pending_id"]
    return pending
