"""The console's chrome in a real browser: what shows before sign-in, after sign-out and for
each key's scopes, the status line, the skip link and the sign-in prompt's wording."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest
from console_support import (
    ADMIN_KEY,
    BROWSER_TESTS,
    OPERATOR_KEY,
    Console,
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
    from playwright.sync_api import Browser
except ImportError:  # the dev extra installs it
    Browser = None  # type: ignore[assignment,misc]

pytestmark = BROWSER_TESTS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    """One stream scored, nothing labelled (so drift is never judged here)."""
    with console_service(tmp_path_factory.mktemp("console-signin")) as running:
        rng = np.random.default_rng(11)
        readings = normal_readings(rng, 20) + fault_readings(rng, 6)
        score(running, "boiler-s", stamped(readings, time.time() - 600))
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def console(browser: Browser, server: ServiceProcess) -> Iterator[Console]:
    with console_tab(browser, server) as tab:
        yield tab


def test_hidden_parts_stay_hidden_before_sign_in_and_after_sign_out(console: Console) -> None:
    page = console.page
    page.goto(f"{console.server.url}/console#stream/boiler-s")
    page.wait_for_selector("body[data-ready]")
    assert page.is_hidden("#nav") and page.is_hidden("#sign-out") and page.is_hidden("#who")
    console.sign_in(OPERATOR_KEY, view="stream/boiler-s")
    page.wait_for_selector("#stream-plot svg")
    assert page.is_visible("#nav") and "olga-operator" in page.inner_text("#who")
    page.click("#nav a[data-view=queue]")
    page.wait_for_selector("#queue-items .card")
    page.click("#sign-out")
    page.wait_for_selector("#view-signin:not([hidden])")
    assert page.is_hidden("#nav") and page.is_hidden("#who")
    assert page.inner_text("#who-name") == ""  # the previous user's name and scopes are gone
    for rendered in ("#queue-items .card", "#stream-plot svg", "#stream-selected *"):
        assert page.query_selector(rendered) is None, rendered
    assert page.inner_text("#queue-summary") == ""
    assert page.evaluate("location.hash") == ""  # the next user does not land on our view


def test_a_feedback_key_is_not_offered_the_window_form(console: Console) -> None:
    console.sign_in(OPERATOR_KEY, view="maintenance")
    page = console.page
    page.wait_for_selector("#windows-table thead")
    assert page.is_hidden("#window-form")
    page.click("#sign-out")
    console.sign_in(ADMIN_KEY, view="maintenance")
    page.wait_for_selector("#window-form", state="visible")


def test_the_skip_link_moves_the_focus_and_keeps_the_view(console: Console) -> None:
    console.sign_in(ADMIN_KEY, view="thresholds")  # an admin-only key: the queue is a 403
    page = console.page
    page.wait_for_selector("#thresholds-table thead")
    page.focus("#skip")
    page.keyboard.press("Enter")
    page.wait_for_selector("#main:focus")
    assert page.evaluate("location.hash") == "#thresholds"
    assert page.is_visible("#view-thresholds") and page.is_hidden("#view-signin")


def test_signing_in_again_clears_the_refusal_it_answers(console: Console) -> None:
    console.sign_in(OPERATOR_KEY, view="thresholds")
    page = console.page
    page.wait_for_selector("#signin-reason:not([hidden])")
    assert "admin" in console.status()
    page.fill("#api-key", ADMIN_KEY)
    page.press("#api-key", "Enter")
    page.wait_for_selector("#thresholds-table thead")
    assert console.status() == ""


def test_a_read_the_balancer_timed_out_says_so_and_nothing_of_applying(
    console: Console,
) -> None:
    """deploy/nginx's 504 says "the request may or may not have been applied": true of a
    change, confusing beside a read, which changes nothing."""
    page = console.page
    timeout = {
        "status": 504,
        "content_type": "application/problem+json",
        "json": {"status": 504, "detail": "the replica did not answer within the balancer "
                 "timeout; the request may or may not have been applied"},
    }  # fmt: skip
    page.route("**/v1/drift/**", lambda route: route.fulfill(**timeout))
    console.allowed.append("status of 504")
    console.sign_in(ADMIN_KEY, view="thresholds")
    page.locator("#status", has_text="a proxy answered 504").wait_for()
    assert "could not be reached" in console.status() and "Nothing was changed" in console.status()
    assert "applied" not in console.status() and "refused" not in console.status()


def test_a_view_that_loads_clears_the_error_of_the_view_before(console: Console) -> None:
    page = console.page
    outage = {"status": 503, "json": {"detail": "the drift sample is being rebuilt"}}
    page.route("**/v1/drift/**", lambda route: route.fulfill(**outage))
    console.sign_in(ADMIN_KEY, view="thresholds")
    page.locator("#status", has_text="The service refused (503)").wait_for()
    page.click("#nav a[data-view=maintenance]")
    page.wait_for_selector("#windows-table thead")
    assert console.status() == ""


def test_a_request_shows_it_is_waiting_and_gives_up_with_a_reason(
    browser: Browser, server: ServiceProcess
) -> None:
    with console_tab(browser, server) as console:
        page = console.page
        page.clock.install()
        console.sign_in(ADMIN_KEY, view="thresholds")
        page.wait_for_selector("#thresholds-table thead")
        assert page.is_hidden("#busy")
        page.route("**/v1/maintenance-windows*", lambda route: None)  # never answered
        page.click("#nav a[data-view=maintenance]")
        page.wait_for_selector("#busy", state="visible")
        assert page.get_attribute("#main", "aria-busy") == "true"
        page.clock.run_for(25_000)
        page.locator("#status", has_text="no answer within 20 s").wait_for()
        assert "could not be reached" in console.status()
        assert page.is_hidden("#busy")


def test_drift_with_too_few_confirmed_normals_reads_not_judged(console: Console) -> None:
    console.sign_in(ADMIN_KEY, view="thresholds")
    verdict = console.page.wait_for_selector("#thresholds-drift p span")
    assert verdict is not None
    assert verdict.inner_text() == "Not judged yet."
    assert verdict.get_attribute("class") == "drift-unjudged"  # not the all-clear's green
    assert "not judged" in console.page.inner_text("#thresholds-drift")


LONG_STREAM = "line-b.compressor-station-north-" + "verylongsegment" * 14  # 242 characters


def sideways(console: Console) -> int:
    scroll: int = console.page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return scroll


@pytest.mark.parametrize("width", [1280, 400])
def test_long_stream_ids_and_narrow_screens_keep_the_page_and_cards_in_view(
    browser: Browser, server: ServiceProcess, width: int
) -> None:
    rng = np.random.default_rng(12)
    readings = normal_readings(rng, 20) + fault_readings(rng, 6)
    score(server, LONG_STREAM, stamped(readings, time.time() - 600))
    with console_tab(browser, server, viewport={"width": width, "height": 900}) as console:
        console.sign_in(OPERATOR_KEY)
        page = console.page
        page.fill("#queue-stream", LONG_STREAM)
        page.press("#queue-stream", "Enter")
        card = page.locator(".card.alert").first
        card.wait_for()
        assert sideways(console) <= 0, "the page scrolls sideways"
        box = card.bounding_box()
        meter = card.locator(".meter").bounding_box()
        expected = card.locator("table.sensors thead th").last
        assert box is not None and meter is not None and expected.inner_text() == "Expected"
        right = expected.bounding_box()
        assert right is not None and right["x"] + right["width"] <= box["x"] + box["width"]
        assert meter["width"] >= 100  # a meter, not a sliver beside the score text
        page.goto(f"{server.url}/console#stream/{LONG_STREAM}")
        page.wait_for_selector("#stream-selected:not([hidden])")
        assert sideways(console) <= 0, "the stream view scrolls sideways"


def test_a_wrong_key_is_told_plainly_what_to_do(console: Console) -> None:
    console.page.goto(f"{console.server.url}/console")
    console.page.wait_for_selector("body[data-ready]")
    console.page.fill("#api-key", "not-a-key-anyone-has-0000000000000000")
    console.page.press("#api-key", "Enter")
    reason = console.page.locator("#signin-reason")
    reason.wait_for()
    assert reason.inner_text().endswith("Sign in with a valid key.")
    assert "a key that may" not in reason.inner_text()


def test_without_javascript_the_page_says_it_needs_it(
    browser: Browser, server: ServiceProcess
) -> None:
    with console_tab(browser, server, java_script_enabled=False) as console:
        console.page.goto(f"{server.url}/console")
        notice = console.page.locator("noscript p")
        assert "needs JavaScript" in notice.inner_text()


def test_tiny_figures_are_written_with_an_exponent(console: Console) -> None:
    console.page.goto(f"{console.server.url}/console")
    console.page.wait_for_selector("body[data-ready]")
    written = console.page.evaluate(
        "async () => { const dom = await import('/console/assets/dom.js');"
        " return [5.541e-20, 0.01344, 0, 82.4, 123456].map(dom.number); }"
    )
    assert written == ["5.54E-20", "0.01344", "0", "82.4", "123,456"]


def test_after_labelling_a_card_the_focus_is_on_the_next_one(console: Console) -> None:
    console.sign_in(OPERATOR_KEY)
    page = console.page
    page.fill("#queue-stream", "boiler-s")
    page.press("#queue-stream", "Enter")
    page.locator("#queue-summary", has_text="stream boiler-s").wait_for()
    first, second = (page.locator(".card").nth(i).get_attribute("data-reading-id") for i in (0, 1))
    page.locator(".card").first.locator("button[data-label=normal]").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector(f'.card[data-reading-id="{first}"]', state="detached")
    page.wait_for_selector(f'.card[data-reading-id="{second}"]:focus')
