"""Failing fast while Redis hangs.

A Redis that accepts connections but never answers holds every call for the whole
timeout, and a replica commits one turn of requests at a time, so requests queue behind
it. After a call times out, :class:`Breaker` refuses calls for ``open_s``; the first call
after that tries Redis again, and its outcome decides whether the refusals go on.

>>> now = [0.0]
>>> breaker = Breaker(5.0, clock=lambda: now[0])
>>> breaker.failed("timeout"); breaker.open()
True
>>> now[0] = 5.0; breaker.open()
False
>>> breaker.failed("unreachable"); breaker.open()  # refused at once anyway: no need
False
"""

from __future__ import annotations

import time
from collections.abc import Callable


class Breaker:
    """Open for ``open_s`` after a timeout (never, with 0); closed by any later success."""

    def __init__(self, open_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.open_s = open_s
        self.clock = clock
        self._until = 0.0

    def open(self) -> bool:
        """Whether a call now should be refused without trying."""
        return self.clock() < self._until

    def failed(self, reason: str) -> None:
        if reason == "timeout" and self.open_s > 0:
            self._until = self.clock() + self.open_s

    def succeeded(self) -> None:
        self._until = 0.0
