"""What answers say of a dependency's failure, and what the log keeps."""

from __future__ import annotations

import logging

import pytest

from service.redaction import ChangeLog, full_reason, public_reason


def test_an_answer_says_the_kind_and_the_log_the_message() -> None:
    exc = ConnectionError("Error 111 connecting to redis.plant.internal:6379. Connection refused.")
    assert public_reason(exc) == "ConnectionError (the service log has the reason)"
    assert full_reason(exc) == (
        "ConnectionError: Error 111 connecting to redis.plant.internal:6379. Connection refused."
    )
    assert full_reason(OSError()) == "OSError: no message"


def test_a_probe_logs_each_new_reason_once_and_its_recovery_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log = ChangeLog(logging.getLogger("probe-test"), "store unreachable")
    with caplog.at_level(logging.WARNING, logger="probe-test"):
        log.fine()  # nothing failed: nothing to say
        for _ in range(3):
            log.failed(ConnectionError("refused"))
        log.failed(TimeoutError("timed out"))
        log.fine()
        log.fine()
    assert [r.getMessage() for r in caplog.records] == [
        "store unreachable: ConnectionError: refused",
        "store unreachable: TimeoutError: timed out",
        "store unreachable: reachable again",
    ]
