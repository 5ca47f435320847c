"""The operator's console in a real browser (Debian's chromium driven by Playwright, no
browser download) against a real service process that can reach nothing but loopback:
sign in, review and label an alert, approve a threshold, set maintenance windows, and a
feedback-only key refused where it may not act. Screenshots of each view go to
$CONSOLE_SCREENSHOTS when set (docs/images holds the ones the docs show).

Waits use locators, not wait_for_function: the page's policy forbids evaluating strings,
Playwright's own included."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from console_support import (
    ADMIN,
    ADMIN_KEY,
    BROWSER_TESTS,
    MODEL,
    OPERATOR,
    OPERATOR_KEY,
    TABLET,
    Console,
    api,
    chromium,
    console_service,
    console_tab,
    fault_readings,
    normal_readings,
    open_pending,
    score,
    stamped,
)
from service_process import ServiceProcess

try:
    from playwright.sync_api import Browser
except ImportError:  # the dev extra installs it
    Browser = None  # type: ignore[assignment,misc]

pytestmark = BROWSER_TESTS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with console_service(tmp_path_factory.mktemp("console")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = os.environ.get("CONSOLE_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def console(browser: Browser, server: ServiceProcess) -> Iterator[Console]:
    with console_tab(browser, server) as tab:
        yield tab


def test_the_console_is_served_with_a_strict_policy(server: ServiceProcess) -> None:
    for path in ("/console", "/console/assets/console.js", "/console/assets/console.css"):
        response = httpx.get(server.url + path, timeout=10)
        assert response.status_code == 200, path
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    page = httpx.get(server.url + "/console", timeout=10).text
    assert "<script>" not in page and " on" not in page.split("<body>")[1].split("=")[0]
    assert "http://" not in page and "https://" not in page  # every asset from this origin


def test_sign_in_see_a_fault_alert_with_its_top_sensor_label_it_and_it_leaves(
    console: Console, server: ServiceProcess, shots: Path
) -> None:
    rng = np.random.default_rng(1)
    start = time.time() - 600
    readings = normal_readings(rng, 30) + fault_readings(rng, 8)  # still faulty at the end
    scored = score(server, "boiler-1", stamped(readings, start))
    assert scored["alerts_raised"] == 1
    page = console.page
    console.sign_in(OPERATOR_KEY)
    page.fill("#queue-stream", "boiler-1")
    page.press("#queue-stream", "Enter")
    page.locator("#queue-summary", has_text="stream boiler-1").wait_for()  # the filtered answer
    first = page.wait_for_selector('.card.alert[data-stream="boiler-1"]')
    assert first is not None
    reading_id = first.get_attribute("data-reading-id")
    top = first.query_selector("table.sensors tbody tr th")
    assert top is not None and top.inner_text() == "bearing_temp"
    stamp = first.query_selector("time")
    assert stamp is not None and (stamp.get_attribute("title") or "").endswith("(UTC)")
    page.screenshot(path=shots / "console-queue.png", full_page=False)

    first.query_selector("input").fill("bearing running hot")  # type: ignore[union-attr]
    first.query_selector("button[data-label=anomaly]").click()  # type: ignore[union-attr]
    page.wait_for_selector(f'.card[data-reading-id="{reading_id}"]', state="detached")
    assert "labelled anomaly" in console.status()
    labels = api(server, "GET", "/v1/feedback?stream_id=boiler-1", OPERATOR)["items"]
    assert [(x["reading_id"], x["label"], x["note"]) for x in labels] == [
        (reading_id, "anomaly", "bearing running hot")
    ]
    page.press("#queue-stream", "Enter")  # the queue again, from the service
    page.wait_for_selector(".card")
    assert page.query_selector(f'.card[data-reading-id="{reading_id}"]') is None


def test_a_feedback_only_key_cannot_approve(
    console: Console, server: ServiceProcess, shots: Path
) -> None:
    pending = open_pending(server, seed=2)
    console.sign_in(OPERATOR_KEY, view="thresholds")
    page = console.page
    page.wait_for_selector("#signin-reason:not([hidden])")
    reason = page.inner_text("#signin-reason")
    assert "403" in reason and "admin" in reason
    assert page.is_visible("#api-key")  # a sign-in prompt, not a blank page
    page.screenshot(path=shots / "console-forbidden.png")
    refused = httpx.post(
        f"{server.url}/v1/admin/pending-thresholds/{pending['id']}/approve",
        json={},
        headers=OPERATOR,
        timeout=10,
    )
    assert refused.status_code == 403
    current = api(server, "GET", f"/v1/admin/thresholds/{MODEL}", ADMIN)["current"]
    assert current["pending"]["id"] == pending["id"]


def test_approve_a_pending_threshold_and_the_new_version_is_served(
    console: Console, server: ServiceProcess, shots: Path
) -> None:
    pending = open_pending(server, seed=3)
    console.sign_in(ADMIN_KEY, view="thresholds")
    page = console.page
    button = page.wait_for_selector(f'[data-pending-id="{pending["id"]}"] button.primary')
    page.wait_for_selector("#thresholds-drift p")
    page.screenshot(path=shots / "console-thresholds.png", full_page=True)
    assert button is not None
    page.once("dialog", lambda dialog: dialog.accept())  # the approval is confirmed first
    button.click()
    page.locator("#status", has_text="Approved").wait_for()
    served = api(server, "GET", f"/v1/models/{MODEL}", ADMIN)["threshold"]
    assert served["current"] == pytest.approx(pending["candidate"])
    assert served["version"] > pending["current_version"]
    reply = score(
        server, "boiler-after", stamped(normal_readings(np.random.default_rng(4), 1), time.time())
    )
    assert reply["threshold_version"] == served["version"]
    row = page.wait_for_selector(f'#thresholds-table tr[data-version="{served["version"]}"]')
    assert row is not None and "in force" in row.inner_text()
    page.screenshot(path=shots / "console-thresholds-approved.png", full_page=True)


def test_a_suppress_alerts_window_set_in_the_console_suppresses_a_fault(
    console: Console, server: ServiceProcess, shots: Path
) -> None:
    console.sign_in(ADMIN_KEY, view="maintenance")
    page = console.page
    page.check("input[name=scope][value=stream]")
    page.fill("#window-stream", "boiler-9")
    page.fill("#window-reason", "feed valve replacement")
    page.click("#window-form button[type=submit]")
    page.locator("#status", has_text="set").wait_for()
    window = api(server, "GET", "/v1/maintenance-windows?current=true", ADMIN)[0]
    assert (window["stream_id"], window["modes"]) == ("boiler-9", ["suppress_alerts"])
    assert window["author"] == "alice-admin"

    rng = np.random.default_rng(5)
    start = time.time() - 300
    readings = normal_readings(rng, 20) + fault_readings(rng, 8) + normal_readings(rng, 6)
    reply = score(server, "boiler-9", stamped(readings, start))
    suppressed = [r for r in reply["results"] if r["alert_state"] == "suppressed"]
    assert suppressed and reply["alerts_raised"] == 0
    assert {r["suppressed_by_window"] for r in suppressed} == {window["id"]}
    assert all(r["anomaly"] for r in suppressed[:3])
    metrics = httpx.get(server.url + "/metrics", timeout=10).text
    assert 'anomaly_maintenance_windows_active{mode="suppress_alerts"} 1.0' in metrics
    page.goto(f"{server.url}/console#maintenance")
    page.wait_for_selector(f'tr[data-window-id="{window["id"]}"]')
    page.screenshot(path=shots / "console-maintenance.png", full_page=True)

    page.click("#sign-out")  # the stream view reads labels: a feedback key's view
    console.sign_in(OPERATOR_KEY, view="stream/boiler-9")
    page.wait_for_selector("#stream-plot svg .window-band")
    page.screenshot(path=shots / "console-stream-window.png", full_page=True)
    api(server, "POST", f"/v1/maintenance-windows/{window['id']}/end", ADMIN, json={})


def test_the_stream_view_plots_alerts_and_labels_a_clicked_point(
    console: Console, server: ServiceProcess, shots: Path
) -> None:
    rng = np.random.default_rng(6)
    readings = normal_readings(rng, 40) + fault_readings(rng, 10) + normal_readings(rng, 30)
    reply = score(server, "boiler-2", stamped(readings, time.time() - 1200))
    console.sign_in(OPERATOR_KEY, view="stream/boiler-2")
    page = console.page
    page.wait_for_selector("#stream-plot svg .alert-band")
    assert page.query_selector("#stream-plot svg polyline.smoothed") is not None
    page.click('#stream-plot svg rect.hit[data-index="12"]')
    page.wait_for_selector("#stream-selected:not([hidden])")
    wanted = reply["results"][12]["reading_id"]
    assert wanted in page.inner_text("#stream-selected h3")
    page.keyboard.press("ArrowRight")  # the keyboard moves the chosen reading
    chosen = reply["results"][13]["reading_id"]
    page.locator("#stream-selected h3", has_text=chosen).wait_for()
    page.click("#stream-selected button[data-label=normal]")
    page.wait_for_selector("#stream-plot svg circle.label-normal")
    page.screenshot(path=shots / "console-stream.png", full_page=True)
    labels = api(server, "GET", "/v1/feedback?stream_id=boiler-2", OPERATOR)["items"]
    assert [(x["reading_id"], x["label"]) for x in labels] == [(chosen, "normal")]


def test_an_exclude_from_learning_window_keeps_its_readings_out_of_recalibration(
    console: Console, server: ServiceProcess
) -> None:
    console.sign_in(ADMIN_KEY, view="maintenance")
    page = console.page
    page.check("input[name=scope][value=prefix]")
    page.fill("#window-stream", "boiler-7")
    page.uncheck("input[name=mode][value=suppress_alerts]")
    page.check("input[name=mode][value=exclude_from_learning]")
    page.fill("#window-reason", "commissioning run, not normal operation")
    page.click("#window-form button[type=submit]")
    page.locator("#status", has_text="set").wait_for()
    window = next(
        w
        for w in api(server, "GET", "/v1/maintenance-windows?current=true", ADMIN)
        if w["stream_prefix"] == "boiler-7"
    )
    assert window["modes"] == ["exclude_from_learning"]

    before = api(server, "POST", f"/v1/admin/thresholds/{MODEL}/recalibrate", ADMIN)
    rng = np.random.default_rng(7)
    now = time.time() - 600
    inside = score(server, "boiler-7a", stamped(normal_readings(rng, 30), now))
    outside = score(server, "boiler-8", stamped(normal_readings(rng, 10), now))
    assert {r["excluded_from_learning_by_window"] for r in inside["results"]} == {window["id"]}
    for reply in (inside, outside):
        ids = [r["reading_id"] for r in reply["results"]]
        body = {"label": "normal", "reading_ids": ids, "stream_id": reply["stream_id"]}
        api(server, "POST", "/v1/feedback", OPERATOR, json=body)
    after = api(server, "POST", f"/v1/admin/thresholds/{MODEL}/recalibrate", ADMIN)
    assert after["n_samples"] == before["n_samples"] + 10
    api(server, "POST", f"/v1/maintenance-windows/{window['id']}/end", ADMIN, json={})


def test_keyboard_sign_in_and_a_tablet_width_layout(
    browser: Browser, server: ServiceProcess, shots: Path
) -> None:
    score(server, "boiler-5", stamped(fault_readings(np.random.default_rng(8), 6), time.time()))
    tablet = {"viewport": TABLET, "locale": "de-DE", "timezone_id": "America/Chicago"}
    with console_tab(browser, server, **tablet) as tab:
        page = tab.page
        page.goto(f"{server.url}/console")
        page.wait_for_selector("body[data-ready]")
        page.wait_for_selector("#api-key:focus")  # the focus starts in the key's field
        page.keyboard.type(OPERATOR_KEY)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Sign in"
        page.keyboard.press("Enter")
        page.wait_for_selector(".card")
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, "the page scrolls sideways at tablet width"
        page.screenshot(path=shots / "console-queue-tablet.png")
