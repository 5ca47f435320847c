"""Batches of plain number lists take a simdjson path straight to a float64 matrix; every
other body takes the general path. Both must accept the same bodies with the same values
and refuse the same bodies with the same problem: each body here is decoded both ways."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest

from service.errors import ServiceError
from service.scoring.payload import to_readings
from service.wire import decode
from service.wire.decode import parse_json

SENSORS = ["a", "b", "c", "d"]
INDEX = {name: i for i, name in enumerate(SENSORS)}
ROWS = 300  # enough bytes for the simdjson path (it leaves small bodies to orjson)
RNG = np.random.default_rng(7)
GENERAL_ONLY: Callable[..., Any] = lambda *args: None  # noqa: E731
REAL_PLAIN_BATCH = decode._plain_batch
PLAIN = (RNG.normal(size=(ROWS, 4)) * 10.0 ** RNG.integers(-3, 6, size=(ROWS, 4))).tolist()


def batch(rows: Any, **top: Any) -> bytes:
    """Compact JSON, as clients send it (the standard encoder: it writes any integer)."""
    body = {"stream_id": "s-1", **top, "readings": rows}
    return json.dumps(body, separators=(",", ":")).encode()


MARKER = 2468.125  # a value no other reading holds, replaced by text json.dumps won't write


def spelled(rows: list[Any], text: bytes) -> bytes:
    body = batch(rows)
    assert body.count(str(MARKER).encode()) == 1
    return body.replace(str(MARKER).encode(), text)


def with_row(index: int, row: Any) -> list[Any]:
    rows = [list(r) for r in PLAIN]
    rows[index] = row
    return rows


def decoded(body: bytes, max_readings: int = 1000) -> tuple[str, Any]:
    """What a request yields: its readings and identity, or the problem it is refused with."""
    try:
        parsed = parse_json(body, max_readings)
        values = to_readings(parsed, SENSORS, INDEX)
    except ServiceError as exc:
        return "refused", (type(exc).__name__, exc.status_code, str(exc.detail), exc.problem())
    return "accepted", (
        parsed.stream_id,
        parsed.model,
        parsed.single,
        values.values.dtype.str,
        values.values.tobytes(),
        values.reading_ids,
        None if values.timestamps is None else values.timestamps.tobytes(),
    )


def both_ways(
    body: bytes, monkeypatch: pytest.MonkeyPatch, max_readings: int = 1000
) -> tuple[tuple[str, Any], tuple[str, Any], bool]:
    """(simdjson path allowed, general path only, whether simdjson's path answered)."""
    answered: list[bool] = []

    def spy(*args: Any) -> Any:
        result = REAL_PLAIN_BATCH(*args)
        answered.append(result is not None)
        return result

    monkeypatch.setattr(decode, "_plain_batch", spy)
    fast = decoded(body, max_readings)
    monkeypatch.setattr(decode, "_plain_batch", GENERAL_ONLY)
    general = decoded(body, max_readings)
    return fast, general, any(answered)


@pytest.mark.parametrize(
    "body",
    [
        batch(PLAIN),
        batch(PLAIN, model="test-plant"),
        batch([[int(x) for x in row] for row in PLAIN]),  # integers
        batch(with_row(5, [-0.0, 5e-324, 1e-310, -1e-45])),  # signed zero, subnormals
        batch(with_row(0, [2**53, -(2**53), 1, 0])),  # the largest exact integers
        batch(PLAIN).replace(b",", b" ,\n\t"),  # whitespace between values
        batch(PLAIN).replace(b"e+", b"E"),  # exponent spellings
    ],
    ids=["floats", "model", "integers", "edges", "exact-integers", "whitespace", "exponents"],
)
def test_plain_batches_take_the_fast_path_with_identical_values(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fast, general, answered = both_ways(body, monkeypatch)
    assert answered, "a plain batch should take the simdjson path"
    assert fast[0] == "accepted", fast
    assert fast == general


ODD_BODIES = {
    "ragged": batch(with_row(3, [1, 2, 3])),
    "all-too-short": batch([row[:3] for row in PLAIN]),  # a known width, the wrong one
    "all-too-long": batch([[*row, 1.0] for row in PLAIN]),
    "nested": batch(with_row(7, [1, 2, [3], 4])),
    "nested-same-count": batch(with_row(7, [1, 2, [3, 4]])),
    "number-row": batch(with_row(2, 5)),
    "empty-row": batch(with_row(2, [])),
    "object-row": batch(with_row(1, {"values": [1, 2, 3, 4], "reading_id": "r"})),
    "named-row": batch(with_row(1, {"a": 1, "b": 2, "c": 3, "d": 4})),
    "boolean": batch(with_row(9, [1, True, 3, 4])),
    "null": batch(with_row(9, [1, None, 3, 4])),
    "string": batch(with_row(9, [1, "2", 3, 4])),
    "float32-edge": batch(with_row(4, [1, 3.4028234e38, 3, 4])),  # beyond 2**53: general
    "float32-overflow": batch(with_row(4, [1, 3.5e38, 3, 4])),
    "float64-overflow": spelled(with_row(6, [1, MARKER, 3, 4]), b"1e400"),
    "nan": spelled(with_row(6, [1, MARKER, 3, 4]), b"NaN"),
    "beyond-exact-integers": batch(with_row(0, [2**53 + 1, 2, 3, 4])),
    "beyond-64-bits": batch(with_row(0, [2**70, 2, 3, 4])),
    "negative-beyond-64-bits": batch(with_row(0, [-(2**70), 2, 3, 4])),
    "unknown-key": batch(PLAIN, extra=1),
    "reading-and-readings": batch(PLAIN, reading=[1, 2, 3, 4]),
    "duplicate-key": batch(PLAIN).replace(
        b'{"stream_id":"s-1"', b'{"stream_id":"a","stream_id":"b"'
    ),
    "duplicate-readings": batch(PLAIN)[:-1] + b',"readings":[[1,2,3,4]]}',
    "empty-model": batch(PLAIN, model=""),
    "number-model": batch(PLAIN, model=3),
    "bad-stream-id": batch(PLAIN).replace(b'"s-1"', b'"a/b"'),
    "stream-id-with-bracket": batch(PLAIN).replace(b'"s-1"', b'"s[1"'),
    "object-in-row": batch(with_row(7, [1, 2, 3, {}])),
    "escaped-bracket-hides-nesting": batch(with_row(7, [1, 2, 3, [4]])).replace(
        b'"s-1"', b'"\\u005b"'
    ),
    "missing-stream-id": batch(PLAIN).replace(b'"stream_id":"s-1",', b""),
    "readings-not-a-list": batch({"x": PLAIN}),
    "not-an-object": orjson.dumps(PLAIN),
    "trailing-garbage": batch(PLAIN) + b"x",
    "truncated": batch(PLAIN)[:-2],
    "bad-utf8": batch(PLAIN).replace(b'"s-1"', b'"s\xff1"'),
    "byte-order-mark": b"\xef\xbb\xbf" + batch(PLAIN),
}


@pytest.mark.parametrize("body", ODD_BODIES.values(), ids=ODD_BODIES.keys())
def test_every_other_body_gets_the_general_paths_answer(
    body: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(body) >= decode._PLAIN_BATCH_MIN_BYTES
    fast, general, _ = both_ways(body, monkeypatch)
    assert fast == general


def test_batch_size_limits_hold_on_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    fast, general, answered = both_ways(batch(PLAIN), monkeypatch, max_readings=ROWS - 1)
    assert fast == general and fast[0] == "refused" and fast[1][1] == 413
    assert not answered
    fast, general, answered = both_ways(batch(PLAIN), monkeypatch, max_readings=ROWS)
    assert fast == general and fast[0] == "accepted" and answered


def test_values_outlive_the_parser() -> None:
    """The matrix owns its memory: later parses don't change an earlier request's values."""
    first = parse_json(batch(PLAIN), 1000)
    for scale in (2.0, 3.0):
        parse_json(batch((np.array(PLAIN) * scale).tolist()), 1000)
    assert first.matrix is not None
    assert np.array_equal(first.matrix, np.array(PLAIN))


def test_a_bytearray_body_is_accepted() -> None:
    """Bodies that came in several chunks are joined into a bytearray."""
    parsed = parse_json(bytearray(batch(PLAIN)), 1000)
    assert parsed.matrix is not None and np.array_equal(parsed.matrix, np.array(PLAIN))


@pytest.mark.parametrize(
    ("widths", "rows", "values", "expected"),
    [
        ({4}, 3, 12, 4),
        ({4, 3}, 2, 7, None),  # ragged
        ({-1}, 2, 8, None),  # a reading that is not a list
        ({4}, 3, 13, None),  # values the lengths don't account for
        # pysimdjson's len() stops at 0xFFFFFF: rows of 16,777,216 and 16,777,218 values
        # both report 16,777,215 and would reshape into two rows of 16,777,217
        ({0xFFFFFF}, 2, 16_777_216 + 16_777_218, None),
        ({0xFFFFFF}, 2, 2 * 0xFFFFFF, None),  # even when the total happens to fit
    ],
)
def test_row_width_is_trusted_only_when_lengths_and_values_agree(
    widths: set[int], rows: int, values: int, expected: int | None
) -> None:
    assert decode._common_width(widths, rows, values) == expected
