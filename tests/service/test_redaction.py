"""What answers say of a dependency's failure, and what the log keeps."""

from __future__ import annotations

import doctest
import logging

import pytest

from service import redaction
from service.redaction import REPEAT_S, ChangeLog


def test_doctests() -> None:
    assert doctest.testmod(redaction).failed == 0


def test_a_probe_logs_each_new_reason_once_again_while_it_lasts_and_its_end_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    log = ChangeLog(logging.getLogger("probe-test"), "store", clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="probe-test"):
        log.fine()  # nothing failed: nothing to say
        for t in (0.0, 5.0, 10.0):
            now[0] = t
            log.failed("ConnectionError: refused")
        now[0] = REPEAT_S + 1.0  # an outage that lasts: said again, so the log has it
        log.failed("ConnectionError: refused")
        now[0] = REPEAT_S + 2.0
        log.failed("ConnectionError: refused")
        log.failed("TimeoutError: timed out")
        log.fine()
        log.fine()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "store: ConnectionError: refused"),
        ("WARNING", f"store: ConnectionError: refused (still, for {REPEAT_S + 1.0:.0f} s)"),
        ("WARNING", "store: TimeoutError: timed out"),
        ("INFO", "store: answers again"),
    ]
