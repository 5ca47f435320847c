"""The threshold a person last chose: its resolution (the store's query is in
test_recalibration.py's rollback test and the SQL store's tests)."""

from __future__ import annotations

import doctest

from service.calibration import anchors


def test_doctests() -> None:
    assert doctest.testmod(anchors).failed == 0
