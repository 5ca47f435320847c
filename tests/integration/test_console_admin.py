"""The console's admin actions in a real browser: maintenance windows and thresholds. What an
operator typed is never dropped, a wide or lasting change is confirmed first, and a button
cannot send its request twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from console_support import (
    ADMIN,
    ADMIN_KEY,
    BROWSER_TESTS,
    MODEL,
    Console,
    api,
    chromium,
    console_service,
    console_tab,
    open_pending,
)
from service_process import ServiceProcess

try:
    from playwright.sync_api import Browser, Dialog
except ImportError:  # the dev extra installs it
    Browser = None  # type: ignore[assignment,misc]

pytestmark = BROWSER_TESTS


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    with console_service(tmp_path_factory.mktemp("console-admin")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def console(browser: Browser, server: ServiceProcess) -> Iterator[Console]:
    with console_tab(browser, server) as tab:
        yield tab


@pytest.fixture
def windows(server: ServiceProcess) -> Iterator[Any]:
    """The windows in force, read from the service; those a test set are ended after it."""

    def current() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = api(
            server, "GET", "/v1/maintenance-windows?current=true", ADMIN
        )
        return found

    assert current() == []
    yield current
    for window in current():
        api(server, "POST", f"/v1/maintenance-windows/{window['id']}/end", ADMIN, json={})


class Dialogs:
    """Answers the page's confirm() dialogs as told, keeping their messages."""

    def __init__(self, console: Console, accept: bool) -> None:
        self.accept = accept
        self.messages: list[str] = []
        console.page.on("dialog", self._answer)

    def _answer(self, dialog: Dialog) -> None:
        self.messages.append(dialog.message)
        if self.accept:
            dialog.accept()
        else:
            dialog.dismiss()


def fill_window(console: Console, stream: str, reason: str) -> None:
    console.sign_in(ADMIN_KEY, view="maintenance")
    page = console.page
    page.wait_for_selector("#windows-table thead")
    page.fill("#window-stream", stream)
    page.fill("#window-reason", reason)


def test_a_stream_id_typed_with_every_stream_chosen_sets_that_streams_window(
    console: Console, windows: Any
) -> None:
    fill_window(console, "boiler-4", "valve swap")  # the scope left at its default
    console.page.click("#window-form button[type=submit]")
    console.page.locator("#status", has_text="set").wait_for()
    [window] = windows()
    assert (window["stream_id"], window["stream_prefix"]) == ("boiler-4", None)


def test_every_stream_with_an_id_typed_is_refused_naming_the_id(
    console: Console, windows: Any
) -> None:
    fill_window(console, "boiler-4", "valve swap")
    page = console.page
    page.check("input[name=scope][value=all]")  # chosen again after typing
    page.click("#window-form button[type=submit]")
    page.locator("#status", has_text="No window was set").wait_for()
    assert "boiler-4" in console.status()
    assert windows() == []


@pytest.mark.parametrize("accept", [False, True])
def test_an_open_ended_window_on_every_stream_is_confirmed_first(
    console: Console, windows: Any, accept: bool
) -> None:
    dialogs = Dialogs(console, accept)
    fill_window(console, "", "plant shutdown")
    page = console.page
    page.click("#window-form button[type=submit]")
    page.locator("#status", has_text="set").wait_for()
    [message] = dialogs.messages
    assert "every stream" in message and "no end" in message
    if accept:
        [window] = windows()
        assert (window["stream_id"], window["stream_prefix"], window["ends_at"]) == (
            None,
            None,
            None,
        )
    else:
        assert windows() == [] and "No window was set" in console.status()


# Two clicks in one task: the second lands before the first click's reply, as a double
# click on a slow network does (a confirm() in between is answered by the test).
TWICE = "button => { button.click(); button.click(); }"


def sent(console: Console, path: str) -> int:
    """How many requests the page sent to this path."""
    return sum(1 for url in console.urls if url.split("?")[0].endswith(path))


def history(server: ServiceProcess) -> dict[str, Any]:
    found: dict[str, Any] = api(server, "GET", f"/v1/admin/thresholds/{MODEL}", ADMIN)
    return found


def test_approve_is_confirmed_with_both_values_and_sent_once(
    console: Console, server: ServiceProcess
) -> None:
    pending = open_pending(server, seed=31)
    before = history(server)["current"]
    dialogs = Dialogs(console, accept=True)
    console.sign_in(ADMIN_KEY, view="thresholds")
    page = console.page
    approve = page.wait_for_selector(f'[data-pending-id="{pending["id"]}"] button.primary')
    assert approve is not None
    approve.evaluate(TWICE)
    page.locator("#status", has_text="Approved").wait_for()
    page.wait_for_selector(f'#thresholds-table tr[data-version="{before["version"] + 1}"]')
    [message] = dialogs.messages
    candidate = f"{pending['candidate']:.4g}"
    assert candidate in message and "0.3 " in message and "%" in message, message
    assert sent(console, f"/pending-thresholds/{pending['id']}/approve") == 1
    after = history(server)
    assert after["current"]["version"] == before["version"] + 1
    assert "409" not in console.status()


@pytest.mark.parametrize("accept", [False, True])
def test_roll_back_is_confirmed_and_adds_one_version(
    console: Console, server: ServiceProcess, accept: bool
) -> None:
    body = {"value": 4.0, "reason": "test set-up: a value to roll back from"}
    api(server, "POST", f"/v1/admin/thresholds/{MODEL}", ADMIN, json=body)
    before = history(server)
    dialogs = Dialogs(console, accept)
    console.sign_in(ADMIN_KEY, view="thresholds")
    page = console.page
    first = page.wait_for_selector('#thresholds-table tr[data-version="1"] button')
    assert first is not None
    first.evaluate(TWICE)
    if accept:
        page.locator("#status", has_text="Rolled back").wait_for()
    else:
        page.wait_for_selector('#thresholds-table tr[data-version="1"] button:enabled')
    [message] = dialogs.messages
    assert "version 1" in message and "4 would be replaced" not in message
    assert "would replace 4 (version" in message and "%" in message, message
    added = 1 if accept else 0
    assert sent(console, "/rollback") == added
    assert len(history(server)["versions"]) == len(before["versions"]) + added


def test_end_window_is_sent_once(console: Console, server: ServiceProcess, windows: Any) -> None:
    body = {"stream_id": "boiler-e", "modes": ["suppress_alerts"], "reason": "test set-up"}
    window = api(server, "POST", "/v1/maintenance-windows", ADMIN, json=body)
    console.sign_in(ADMIN_KEY, view="maintenance")
    page = console.page
    end = page.wait_for_selector(f'tr[data-window-id="{window["id"]}"] button')
    assert end is not None
    end.evaluate(TWICE)
    page.locator("#status", has_text="ended").wait_for()
    page.wait_for_selector(f'tr[data-window-id="{window["id"]}"] >> text=over')
    assert sent(console, f"/maintenance-windows/{window['id']}/end") == 1
    assert windows() == [] and "409" not in console.status()


def test_a_window_whose_reply_was_lost_is_found_in_the_list_read_again(
    console: Console, windows: Any
) -> None:
    fill_window(console, "boiler-l", "pump overhaul")
    console.lose_reply("/v1/maintenance-windows", acted=True)
    page = console.page
    page.click("#window-submit")
    page.locator("#status", has_text="reply was lost").wait_for()
    [window] = windows()
    assert f"window {window['id']}" in console.status() and "is set" in console.status()
    assert "Nothing was changed" not in console.status()
    page.wait_for_selector(f'tr[data-window-id="{window["id"]}"]')


def test_a_lost_window_is_set_again_only_after_the_list_was_read(
    console: Console, windows: Any
) -> None:
    fill_window(console, "boiler-m", "pump overhaul")
    console.lose_reply("/v1/maintenance-windows", acted=False)
    console.lose_reply("/v1/maintenance-windows", acted=False, method="GET")
    page = console.page
    page.click("#window-submit")
    page.locator("#status", has_text="could not be read again").wait_for()
    assert "not known whether" in console.status() and windows() == []
    assert page.is_disabled("#window-submit")  # a retry waits for the list
    page.click("#windows-filters button")
    page.wait_for_selector("#window-submit:enabled")
    page.click("#window-submit")  # the form kept what was typed
    page.locator("#status", has_text="set (").wait_for()
    [window] = windows()
    assert window["stream_id"] == "boiler-m"


def test_a_lost_window_not_in_the_list_read_again_waits_for_refresh(
    console: Console, windows: Any
) -> None:
    """The list read just after may predate the request reaching the service: Set window
    stayed enabled then, and a second press could set the window twice."""
    fill_window(console, "boiler-n", "pump overhaul")
    console.lose_reply("/v1/maintenance-windows", acted=False)
    page = console.page
    page.click("#window-submit")
    page.locator("#status", has_text="It is not in the list read again").wait_for()
    assert page.is_disabled("#window-submit") and windows() == []
    page.click("#windows-filters button")
    page.wait_for_selector("#window-submit:enabled")


def test_with_no_model_served_the_thresholds_say_why(
    browser: Browser, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("console-no-model")
    with console_service(folder, with_model=False) as bare, console_tab(browser, bare) as tab:
        tab.sign_in(ADMIN_KEY, view="thresholds")
        tab.page.locator("#status", has_text="No model is being served").wait_for()
        assert "no model artifacts" in tab.status()  # the service's own reason
        assert "could not be reached" not in tab.status()
        assert not [u for u in tab.urls if u.endswith("/v1/admin/thresholds/")]
