"""Labelling in the console, in a real browser: one reading gets one label per decision, a
second label only when the operator says so, and labels of streams that share reading ids
are told apart."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from console_support import (
    BROWSER_TESTS,
    OPERATOR,
    OPERATOR_KEY,
    Console,
    api,
    chromium,
    console_service,
    console_tab,
    fault_readings,
    normal_readings,
    score,
    stamped,
)
from service_process import ServiceProcess

try:
    from playwright.sync_api import Browser, Dialog, expect
except ImportError:  # the dev extra installs it
    Browser = None  # type: ignore[assignment,misc]

pytestmark = BROWSER_TESTS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    limit = {"ANOMALY_REVIEW_ALERT_LIMIT": "3"}  # a queue longer than its list, quickly
    with console_service(tmp_path_factory.mktemp("console-labels"), limit) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def console(browser: Browser, server: ServiceProcess) -> Iterator[Console]:
    with console_tab(browser, server) as tab:
        yield tab


def labels_of(server: ServiceProcess, stream: str) -> list[tuple[str, str]]:
    items = api(server, "GET", f"/v1/feedback?stream_id={stream}", OPERATOR)["items"]
    return [(x["reading_id"], x["label"]) for x in items]


def faulty_stream(
    server: ServiceProcess, stream: str, seed: int, faulty: int = 6, **ids: Any
) -> Any:
    rng = np.random.default_rng(seed)
    readings = stamped(normal_readings(rng, 20) + fault_readings(rng, faulty), time.time() - 600)
    if ids.get("client_ids"):
        for i, reading in enumerate(readings):
            reading["reading_id"] = f"r-{i:04d}"
    return score(server, stream, readings)


def test_a_card_sends_one_label_however_fast_its_buttons_are_clicked(
    console: Console, server: ServiceProcess
) -> None:
    faulty_stream(server, "race-1", seed=21)
    console.sign_in(OPERATOR_KEY)
    page = console.page
    page.fill("#queue-stream", "race-1")
    page.press("#queue-stream", "Enter")
    page.locator("#queue-summary", has_text="stream race-1").wait_for()
    card = page.wait_for_selector(".card.alert")
    assert card is not None
    reading_id = card.get_attribute("data-reading-id")
    # Both buttons in one task: the second click lands before the first label's reply.
    card.evaluate(
        "c => { c.querySelector('[data-label=normal]').click();"
        " c.querySelector('[data-label=anomaly]').click(); }"
    )
    page.wait_for_selector(f'.card[data-reading-id="{reading_id}"]', state="detached")
    assert labels_of(server, "race-1") == [(reading_id, "normal")]
    assert "labelled normal" in console.status()


@pytest.mark.parametrize("accept", [False, True])
def test_a_labelled_reading_gets_another_label_only_when_confirmed(
    console: Console, server: ServiceProcess, accept: bool
) -> None:
    stream = f"relabel-{accept}"
    reply = faulty_stream(server, stream, seed=22)
    last = reply["results"][-1]["reading_id"]
    body = {"label": "normal", "reading_ids": [last], "stream_id": stream}
    api(server, "POST", "/v1/feedback", OPERATOR, json=body)
    messages: list[str] = []

    def answer(dialog: Dialog) -> None:
        messages.append(dialog.message)
        dialog.accept() if accept else dialog.dismiss()

    console.page.on("dialog", answer)
    console.sign_in(OPERATOR_KEY, view=f"stream/{stream}")
    page = console.page
    page.locator("#stream-selected", has_text="labelled normal").wait_for()
    page.click("#stream-selected button[data-label=anomaly]")
    page.locator("#status", has_text=last).wait_for()
    assert len(messages) == 1 and "already labelled normal" in messages[0]
    wanted = [(last, "anomaly"), (last, "normal")] if accept else [(last, "normal")]
    assert labels_of(server, stream) == wanted


def test_a_label_switched_back_is_stored_again(console: Console, server: ServiceProcess) -> None:
    """normal, anomaly, then normal again: the third reused the first's client label id, so
    the service replayed the first and stored nothing, while the console said "labelled
    normal" and the reading's latest label stayed anomaly."""
    stream = "switch-back"
    reply = faulty_stream(server, stream, seed=25)
    last = reply["results"][-1]["reading_id"]
    console.page.on("dialog", lambda dialog: dialog.accept())
    console.sign_in(OPERATOR_KEY, view=f"stream/{stream}")
    page = console.page
    for n, value in enumerate(("normal", "anomaly", "normal"), start=1):
        page.locator("#stream-selected", has_text=last).wait_for()
        page.click(f"#stream-selected button[data-label={value}]")
        page.locator("#status", has_text=f"{last} of {stream} labelled {value}").wait_for()
        assert len(labels_of(server, stream)) == n
    assert [label for _, label in labels_of(server, stream)] == ["normal", "anomaly", "normal"]


def test_streams_sharing_reading_ids_are_labelled_apart(
    console: Console, server: ServiceProcess
) -> None:
    """Devices count their own readings, so two streams carry r-0025: labelling it in one
    stream and then in the other stores both (one client label id each)."""
    for stream, seed in (("dup-A", 23), ("dup-B", 24)):
        faulty_stream(server, stream, seed, client_ids=True)
    console.sign_in(OPERATOR_KEY, view="stream/dup-A")
    page = console.page
    for stream in ("dup-A", "dup-B"):
        page.goto(f"{server.url}/console#stream/{stream}")
        page.locator("#stream-selected h3", has_text="r-0025").wait_for()
        page.click("#stream-selected button[data-label=normal]")
        page.locator("#status", has_text=f"of {stream} labelled normal").wait_for()
    assert labels_of(server, "dup-A") == [("r-0025", "normal")]
    assert labels_of(server, "dup-B") == [("r-0025", "normal")]


@pytest.mark.parametrize(
    ("gateway", "problem"),
    [(None, None), (502, None), (503, None), (504, None), (504, "replica-timeout")],
    ids=["no-reply", "proxy-502", "proxy-503", "proxy-504", "balancer-504-problem"],
)
def test_a_label_whose_reply_was_lost_is_stored_once_when_sent_again(
    console: Console, server: ServiceProcess, gateway: int | None, problem: str | None
) -> None:
    """A proxy's 502, 503 or 504 after passing the label on (its own page, or the problem
    document deploy/nginx answers with) is a lost reply too, not the service refusing it:
    sent again, it is stored once."""
    stream = f"lost-{gateway or 1}-{problem or 'page'}"
    faulty_stream(server, stream, seed=25)
    console.sign_in(OPERATOR_KEY, view=f"stream/{stream}")
    page = console.page
    page.wait_for_selector("#stream-selected:not([hidden])")
    reading_id = page.inner_text("#stream-selected h3").removeprefix("Reading ")
    console.lose_reply("/v1/feedback", acted=True, gateway=gateway, problem=problem)
    page.click("#stream-selected button[data-label=anomaly]")
    page.locator("#status", has_text="reply was lost").wait_for()
    assert "not known whether" in console.status() and "same button" in console.status()
    assert "Nothing was changed" not in console.status()
    assert "refused" not in console.status()
    if gateway is not None:
        assert f"a proxy answered {gateway}" in console.status()
    page.click("#stream-selected button[data-label=anomaly]")
    page.locator("#status", has_text="labelled anomaly").wait_for()
    assert labels_of(server, stream) == [(reading_id, "anomaly")]


def test_the_queue_says_when_more_alerts_wait_than_it_lists(
    console: Console, server: ServiceProcess
) -> None:
    reply = faulty_stream(server, "many-1", seed=26, faulty=12)
    alerts = [r["reading_id"] for r in reply["results"] if r["alert"]]
    assert len(alerts) >= 6
    console.sign_in(OPERATOR_KEY)
    page = console.page
    page.fill("#queue-stream", "many-1")
    page.press("#queue-stream", "Enter")
    summary = page.locator("#queue-summary", has_text="stream many-1")
    summary.wait_for()
    assert "3 listed alert reading(s)" in summary.inner_text()
    assert "More unlabelled alerts are waiting" in summary.inner_text()
    cards = page.locator(".card.alert")
    for left in (2, 1, 0):
        cards.first.locator("button[data-label=normal]").click()
        expect(cards).to_have_count(left)
    assert "More unlabelled alerts are waiting" in page.inner_text("#queue-summary")
    page.press("#queue-stream", "Enter")
    page.wait_for_selector(".card.alert")
    listed = page.eval_on_selector_all(".card.alert", "cs => cs.map(c => c.dataset.readingId)")
    assert listed == alerts[::-1][3:6]
