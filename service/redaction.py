"""What an answer may say of a dependency's failure, and where the rest goes.

A driver's message names the server it tried (``connection to server at "db.internal"
(10.0.4.7), port 5432 failed: password authentication failed for user "anomaly"``). That is
an operator's clue, not a client's: ``/readyz`` answers anyone who can reach the port, and a
scoring client needs to know only that the service cannot serve. So answers say the kind of
failure, and the log, read by those who run the service, keeps the whole message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

IN_THE_LOG = "the service log has the reason"
REPEAT_S = 600.0
"""A failure that goes on is logged again after this long, so that the reason is in the
recent log however long the outage, without a line per probe."""


def public_reason(exc: BaseException) -> str:
    """The failure's kind, for an answer.

    >>> public_reason(ConnectionError("Error 111 connecting to redis.internal:6379."))
    'ConnectionError (the service log has the reason)'
    """
    return f"{type(exc).__name__} ({IN_THE_LOG})"


def full_reason(exc: BaseException) -> str:
    """The failure with the driver's message, for the log.

    >>> full_reason(ConnectionError("Error 111 connecting to redis.internal:6379. "))
    'ConnectionError: Error 111 connecting to redis.internal:6379.'
    >>> full_reason(OSError())
    'OSError: no message'
    """
    return f"{type(exc).__name__}: {str(exc).strip() or 'no message'}"


class ChangeLog:
    """Logs a probe's failure when its reason changes, again every :data:`REPEAT_S` while it
    lasts, and once when it clears: a probe every few seconds during an outage writes a line
    now and then, not one per probe."""

    def __init__(
        self, logger: logging.Logger, what: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger = logger
        self.what = what
        self.clock = clock
        self._last: str | None = None
        self._since = 0.0  # when the reason was first logged
        self._logged = 0.0  # when it was last logged

    def failed(self, reason: str) -> None:
        """``reason``: the whole message (:func:`full_reason` of an exception)."""
        now = self.clock()
        if reason != self._last:
            self.logger.warning("%s: %s", self.what, reason)
            self._last, self._since, self._logged = reason, now, now
        elif now - self._logged >= REPEAT_S:
            self.logger.warning("%s: %s (still, for %.0f s)", self.what, reason, now - self._since)
            self._logged = now

    def fine(self) -> None:
        if self._last is not None:
            self.logger.info("%s: answers again", self.what)
            self._last = None
