"""The pure pieces of service/calibration/replicas.py; the link itself runs against a real
PostgreSQL in tests/integration/test_postgres_replicas.py and test_cluster.py."""

from __future__ import annotations

import doctest

import pytest

from service.calibration import replicas
from service.calibration.replicas import announced_labels


def test_doctests() -> None:
    assert doctest.testmod(replicas).failed == 0


@pytest.mark.parametrize(
    ("payload", "count"),
    [("1000 4001", 1000), ("1000 5001", 1000), ("7", 7), ("", 0), ("x 3", 0), ("-2 1", 0)],
)
def test_both_payload_forms_are_read_and_anything_else_counts_for_none(
    payload: str, count: int
) -> None:
    assert announced_labels(payload) == count
