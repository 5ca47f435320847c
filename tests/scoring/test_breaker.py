"""The breaker that fails fast while Redis hangs: open only after a timeout, for its
interval, and closed by a success."""

from __future__ import annotations

import doctest

from service.scoring import breaker
from service.scoring.breaker import Breaker


def test_doctests() -> None:
    assert doctest.testmod(breaker).failed == 0


def test_opens_on_a_timeout_only_and_a_success_closes_it() -> None:
    now = [100.0]
    b = Breaker(5.0, clock=lambda: now[0])
    for reason in ("unreachable", "full", "refused"):
        b.failed(reason)
        assert not b.open()
    b.failed("timeout")
    now[0] = 104.9
    assert b.open()
    b.succeeded()
    assert not b.open()
    b.failed("timeout")
    now[0] = 110.0
    assert not b.open()  # the interval is over: the next call tries Redis again


def test_zero_never_opens() -> None:
    b = Breaker(0, clock=lambda: 0.0)
    b.failed("timeout")
    assert not b.open()
