"""The console's stream view in a real browser: a plot whose axis tells every score's true
value, however far above the threshold, and a stream with no readings said in words."""

from __future__ import annotations

import time
from collections.abc import Iterator
from itertools import pairwise

import numpy as np
import pytest
from console_support import (
    BROWSER_TESTS,
    FAULTY,
    MEAN,
    OPERATOR_KEY,
    SCALE,
    Console,
    chromium,
    console_service,
    console_tab,
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
    with console_service(tmp_path_factory.mktemp("console-stream")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def console(browser: Browser, server: ServiceProcess) -> Iterator[Console]:
    with console_tab(browser, server) as tab:
        yield tab


def score_polyline(console: Console) -> list[float]:
    """The y of each reading's score on the plot (down is lower)."""
    points = console.page.get_attribute("#stream-plot svg polyline.score", "points") or ""
    return [float(pair.split(",")[1]) for pair in points.split()]


def tick_labels(console: Console) -> list[tuple[float, str]]:
    ticks = console.page.query_selector_all("#stream-plot svg text.tick-y")
    return [(float(t.get_attribute("y") or "nan"), t.text_content() or "") for t in ticks]


def test_scores_far_above_the_threshold_are_drawn_at_their_own_height(
    console: Console, server: ServiceProcess
) -> None:
    rng = np.random.default_rng(41)
    faults = MEAN + SCALE * 0.3 * rng.normal(size=(2, len(MEAN)))
    faults[:, FAULTY] += SCALE[FAULTY] * np.array([30.0, 45.0])  # scores near 60 and 135
    readings = normal_readings(rng, 10) + np.round(faults, 3).tolist() + normal_readings(rng, 5)
    reply = score(server, "boiler-high", stamped(readings, time.time() - 300))
    scores = [r["score"] for r in reply["results"]]
    assert 50 < scores[10] < scores[11]
    console.sign_in(OPERATOR_KEY, view="stream/boiler-high")
    console.page.wait_for_selector("#stream-plot svg polyline.score")
    ys = score_polyline(console)
    assert ys[11] < ys[10] < min(ys[:10])  # higher on screen, in the scores' order
    ticks = tick_labels(console)
    highest = max(float(text.replace(",", "")) for _, text in ticks)
    assert highest >= scores[11] * 0.999  # the axis reaches the highest score
    assert "logarithmic" in (console.page.text_content("#stream-plot svg") or "")
    positions = sorted(y for y, _ in ticks)
    assert all(b - a >= 12 for a, b in pairwise(positions)), ticks  # no label on another


def test_a_stream_with_no_readings_says_so(console: Console) -> None:
    console.sign_in(OPERATOR_KEY, view="stream/no-such-stream")
    page = console.page
    page.locator("#stream-plot", has_text="No readings of no-such-stream").wait_for()
    assert page.query_selector("#stream-plot svg") is None
    assert page.is_hidden("#stream-selected")
