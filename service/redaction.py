"""What an answer may say of a dependency's failure, and where the rest goes.

A driver's message names the server it tried (``connection to server at "db.internal"
(10.0.4.7), port 5432 failed: password authentication failed for user "anomaly"``). That is
an operator's clue, not a client's: ``/readyz`` answers anyone who can reach the port, and a
scoring client needs to know only that the service cannot serve. So answers say the kind of
failure, and the log, read by those who run the service, keeps the whole message.
"""

from __future__ import annotations

import logging

IN_THE_LOG = "the service log has the reason"


def public_reason(exc: BaseException) -> str:
    """The failure's kind, for an answer: ``OperationalError (the service log has ...)``."""
    return f"{type(exc).__name__} ({IN_THE_LOG})"


def full_reason(exc: BaseException) -> str:
    """The failure with the driver's message, for the log."""
    return f"{type(exc).__name__}: {str(exc).strip() or 'no message'}"


class ChangeLog:
    """Logs a probe's failure when its reason changes and once when it clears, so a probe
    every few seconds during an outage writes one line, not one per probe."""

    def __init__(self, logger: logging.Logger, what: str) -> None:
        self.logger = logger
        self.what = what
        self._last: str | None = None

    def failed(self, exc: BaseException) -> None:
        reason = full_reason(exc)
        if reason != self._last:
            self.logger.warning("%s: %s", self.what, reason)
            self._last = reason

    def fine(self) -> None:
        if self._last is not None:
            self.logger.warning("%s: reachable again", self.what)
            self._last = None
