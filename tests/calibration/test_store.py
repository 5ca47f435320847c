"""The FeedbackStore protocol is the seam a second backend implements: the SQLite store
offers exactly its methods, with the same signatures, and nothing the rooms could lean on
beyond it."""

from __future__ import annotations

import inspect

from service.calibration.sql import SqlFeedbackStore
from service.calibration.store import FeedbackStore


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


def test_the_sql_store_implements_exactly_the_protocol() -> None:
    protocol = public_methods(FeedbackStore)
    sql = public_methods(SqlFeedbackStore)
    assert set(sql) == set(protocol)
    for name, signature in protocol.items():
        assert sql[name] == signature, name


def test_every_protocol_method_says_what_it_promises() -> None:
    for name in public_methods(FeedbackStore):
        assert inspect.getdoc(getattr(FeedbackStore, name)), name
