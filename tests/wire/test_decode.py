"""Request decoding and validation against a model: the fast path and the precise errors
of the slow path."""

from __future__ import annotations

import io
import json

import numpy as np
import orjson
import pytest

from service.errors import (
    BatchTooLarge,
    InvalidReading,
    InvalidRequest,
    MalformedBody,
    UnknownSensor,
)
from service.scoring.payload import (
    EARLIEST_TIMESTAMP,
    LATEST_TIMESTAMP,
    timestamp_range_problem,
    to_readings,
)
from service.wire.decode import parse_binary, parse_json

SENSORS = ["a", "b", "c"]
UNSHOWABLE_TIMES = (1e20, -1e300, 1.7e12, "9999-12-31T23:59:59-14:00", "0001-01-01T01:00:00+14:00")
INDEX = {name: i for i, name in enumerate(SENSORS)}


def readings(body: object) -> np.ndarray:
    parsed = parse_json(orjson.dumps(body), 10)
    return to_readings(parsed, SENSORS, INDEX).values


def test_list_named_and_wrapped_forms_agree() -> None:
    plain = readings({"stream_id": "s", "readings": [[1, 2, 3], [4, 5, 6.5]]})
    named = readings(
        {
            "stream_id": "s",
            "readings": [{"values": {"c": 3, "a": 1, "b": 2}}, {"values": [4, 5, 6.5]}],
        }
    )
    assert plain.dtype == np.float32 and plain.flags.c_contiguous
    np.testing.assert_array_equal(plain, named)


def test_ids_and_timestamps() -> None:
    parsed = parse_json(
        orjson.dumps(
            {
                "stream_id": "s",
                "readings": [
                    {"values": [1, 2, 3], "reading_id": "x", "timestamp": "2026-01-01T00:00:00Z"},
                    [1, 2, 3],
                    {"values": [1, 2, 3], "timestamp": 17.5},
                ],
            }
        ),
        10,
    )
    out = to_readings(parsed, SENSORS, INDEX)
    assert out.reading_ids == ["x", None, None]
    assert out.timestamps is not None
    assert out.timestamps[0] == 1767225600.0 and np.isnan(out.timestamps[1])
    assert out.timestamps[2] == 17.5


def error_of(body: bytes | object, max_readings: int = 10) -> Exception:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    with pytest.raises(Exception) as info:
        to_readings(parse_json(raw, max_readings), SENSORS, INDEX)
    return info.value


@pytest.mark.parametrize(
    ("body", "kind", "field", "index"),
    [
        (b"", MalformedBody, None, None),
        (b"{", MalformedBody, None, None),
        (b"[1, 2]", InvalidRequest, "body", None),
        ({"readings": [[1, 2, 3]]}, InvalidRequest, "stream_id", None),
        ({"stream_id": "", "reading": [1, 2, 3]}, InvalidRequest, "stream_id", None),
        ({"stream_id": "s"}, InvalidRequest, "readings", None),
        (
            {"stream_id": "s", "reading": [1, 2, 3], "readings": []},
            InvalidRequest,
            "readings",
            None,
        ),
        ({"stream_id": "s", "readings": []}, InvalidRequest, "readings", None),
        ({"stream_id": "s", "readings": [[1, 2, 3]] * 11}, BatchTooLarge, "readings", None),
        ({"stream_id": "s", "readings": [[1, 2, 3]], "extra": 1}, InvalidRequest, "extra", None),
        ({"stream_id": "s", "readings": [[1, 2, 3], [1, 2]]}, InvalidReading, "values", 1),
        ({"stream_id": "s", "readings": [[1, 2, 3], [1, None, 3]]}, InvalidReading, "values[1]", 1),
        ({"stream_id": "s", "readings": [[1, 2, "3"]]}, InvalidReading, "values[2]", 0),
        ({"stream_id": "s", "readings": [[1, 2, 3], [1, 2, 1e39]]}, InvalidReading, "values[2]", 1),
        ({"stream_id": "s", "reading": {"values": {"a": 1, "b": 2}}}, InvalidReading, "values", 0),
        (
            {"stream_id": "s", "reading": {"values": {"a": 1, "b": 2, "c": 3, "zz": 4}}},
            UnknownSensor,
            "values",
            0,
        ),
        ({"stream_id": "s", "reading": {"values": [1, 2, 3], "x": 1}}, InvalidReading, "x", 0),
        ({"stream_id": "s", "reading": {"vals": [1, 2, 3]}}, InvalidReading, "vals", 0),
        ({"stream_id": "s", "reading": {"timestamp": 1}}, InvalidReading, "values", 0),
        (
            {"stream_id": "s", "reading": {"values": [1, 2, 3], "timestamp": "yesterday"}},
            InvalidReading,
            "timestamp",
            0,
        ),
        # Times no date can show again (they broke the review queue and label listings).
        *(
            (
                {"stream_id": "s", "readings": [[1, 2, 3], {"values": [1, 2, 3], "timestamp": t}]},
                InvalidReading,
                "timestamp",
                1,
            )
            for t in UNSHOWABLE_TIMES
        ),
        (
            {"stream_id": "s", "readings": [{"values": [1, 2, 3], "reading_id": "d"}] * 2},
            InvalidReading,
            "reading_id",
            1,
        ),
        # A lone surrogate passed parsing, then broke the reply, the store and the review queue.
        (
            b'{"stream_id": "s", "readings": [[1, 2, 3], {"values": [1, 2, 3], "reading_id": '
            b'"\\ud800"}]}',
            InvalidReading,
            "reading_id",
            1,
        ),
        ({"stream_id": "s", "readings": [[[1, 2, 3]]]}, InvalidReading, "values", 0),
        ({"stream_id": "s", "readings": "abc"}, InvalidRequest, "readings", None),
        ({"stream_id": "s", "readings": [[True, False, True]]}, InvalidReading, "values[0]", 0),
        # numpy would read a boolean beside numbers as 1.0: refused like the all-boolean row
        (
            {"stream_id": "s", "readings": [[1, 2, 3], [True, 2.5, 3]]},
            InvalidReading,
            "values[0]",
            1,
        ),
        ({"stream_id": "line/3", "reading": [1, 2, 3]}, InvalidRequest, "stream_id", None),
        ({"stream_id": "a\nb", "reading": [1, 2, 3]}, InvalidRequest, "stream_id", None),
    ],
)
def test_bad_bodies_name_field_and_reading(
    body: object, kind: type[Exception], field: str | None, index: int | None
) -> None:
    exc = error_of(body)
    assert type(exc) is kind, exc
    if field is not None:
        first = exc.errors[0]  # type: ignore[attr-defined]
        assert first.field == field and first.reading_index == index


def test_integers_beyond_float_range_name_field_and_reading() -> None:
    """The standard parser (used once orjson refuses) yields Python ints of any size."""
    huge = b"1" * 400
    value = error_of(b'{"stream_id": "s", "readings": [[1, 2, 3], [1, 2, ' + huge + b"]]}")
    assert isinstance(value, InvalidReading)
    assert value.errors[0].field == "values[2]" and value.errors[0].reading_index == 1
    stamp = error_of(
        b'{"stream_id": "s", "readings": [[1, 2, 3], {"values": [1, 2, 3], "timestamp": '
        + huge
        + b"}]}"
    )
    assert isinstance(stamp, InvalidReading)
    assert stamp.errors[0].field == "timestamp" and stamp.errors[0].reading_index == 1


def test_booleans_in_strings_do_not_change_results() -> None:
    """A "true" inside a string only sends the batch down the per-reading path."""
    np.testing.assert_array_equal(
        readings({"stream_id": "true-false", "readings": [[1, 2, 3], [4, 5, 6]]}),
        [[1, 2, 3], [4, 5, 6]],
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1.5", "expected a number, got a string"),
        (None, "expected a number, got null"),
        (1e39, "overflows float32"),
        (10**39, "overflows float32"),
    ],
)
def test_lists_of_numbers_fast_path_keeps_every_refusal(value: object, message: str) -> None:
    """Lists of plain numbers go straight to float64; a numeric string (which numpy would
    convert), a null, or a value beyond float32 still gets the precise field error."""
    for body in (
        {"stream_id": "s", "readings": [[1, 2, 3], [1, value, 3]]},
        {"stream_id": "s", "model": "m", "reading": [1, value, 3]},
    ):
        exc = error_of(json.dumps(body).encode())  # json: orjson refuses big integers
        assert isinstance(exc, InvalidReading), body
        first = exc.errors[0]
        assert first.field == "values[1]" and message in first.message, first
        if message == "overflows float32":  # the detail says so too, not "not finite"
            assert str(exc).endswith("overflows float32)"), str(exc)


def test_lists_of_numbers_convert_exactly() -> None:
    """The float64 fast path gives the float32 values numpy's typed conversion gives,
    including integers beyond 2**53 (taken by the general path) and escaped quotes."""
    rows = [[1, 2**53 + 1, 3], [0.1, -2.5e-8, 3e38], [2**62 + 2**38 + 1, 7, 1e-45]]
    want = np.array([np.array(row).astype(np.float32) for row in rows])
    assert np.array_equal(readings({"stream_id": "s", "readings": rows}), want)
    assert np.array_equal(readings({"stream_id": 'q"uote', "readings": rows}), want)


def test_non_finite_json_names_reading() -> None:
    for literal in (b"NaN", b"Infinity", b"1e400", b"-1e400"):
        body = b'{"stream_id": "s", "readings": [[1, 2, 3], [1, 2, ' + literal + b"]]}"
        exc = error_of(body)
        assert isinstance(exc, InvalidReading), literal
        assert exc.errors[0].field == "values[2]" and exc.errors[0].reading_index == 1


def test_binary_bodies() -> None:
    values = np.arange(12, dtype="<f4").reshape(4, 3)
    parsed = parse_binary(
        values.tobytes(),
        "application/octet-stream",
        stream_id="s",
        model=None,
        n_sensors=3,
        max_readings=10,
    )
    np.testing.assert_array_equal(to_readings(parsed, SENSORS, INDEX).values, values)
    buffer = io.BytesIO()
    np.save(buffer, values.astype(np.float64))
    parsed = parse_binary(
        buffer.getvalue(),
        "application/x-npy",
        stream_id="s",
        model=None,
        n_sensors=3,
        max_readings=10,
    )
    np.testing.assert_array_equal(to_readings(parsed, SENSORS, INDEX).values, values)
    with pytest.raises(InvalidRequest):
        parse_binary(
            b"\0" * 10,
            "application/octet-stream",
            stream_id="s",
            model=None,
            n_sensors=3,
            max_readings=10,
        )
    with pytest.raises(InvalidRequest):
        parse_binary(
            b"junk", "application/x-npy", stream_id="s", model=None, n_sensors=3, max_readings=10
        )
    with pytest.raises(InvalidRequest):
        parse_binary(
            values.tobytes(),
            "application/octet-stream",
            stream_id=None,
            model=None,
            n_sensors=3,
            max_readings=10,
        )
    with pytest.raises(BatchTooLarge):
        parse_binary(
            values.tobytes(),
            "application/octet-stream",
            stream_id="s",
            model=None,
            n_sensors=3,
            max_readings=3,
        )
    nan = values.copy()
    nan[2, 1] = np.nan
    parsed = parse_binary(
        nan.tobytes(),
        "application/octet-stream",
        stream_id="s",
        model=None,
        n_sensors=3,
        max_readings=10,
    )
    with pytest.raises(InvalidReading) as info:
        to_readings(parsed, SENSORS, INDEX)
    assert info.value.errors[0].reading_index == 2 and info.value.errors[0].field == "values[1]"


def test_timestamp_range_edges_and_the_milliseconds_hint() -> None:
    assert timestamp_range_problem(EARLIEST_TIMESTAMP) is None
    assert timestamp_range_problem(LATEST_TIMESTAMP) is None
    assert timestamp_range_problem(1_767_225_600.0) is None  # 2026-01-01
    assert "milliseconds" in str(timestamp_range_problem(1_767_225_600_000.0))
    assert timestamp_range_problem(EARLIEST_TIMESTAMP - 1) is not None


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # The header claims 12 TB: refused from the header, nothing allocated.
        (_npy(np.zeros((3, 3), np.float32)).replace(b"(3, 3)", b"(10000000000000, 3)"), "declares"),
        (_npy(np.zeros((3, 3), np.float64))[:-8], "but 64 follow"),
        (_npy(np.array([1, "a"], dtype=object)), "Python objects"),
        (_npy(np.zeros((3, 3), np.float32)) + b"\0\0\0\0", "but 40 follow"),
    ],
)
def test_npy_header_must_match_the_body(body: bytes, expected: str) -> None:
    with pytest.raises(InvalidRequest, match=expected):
        parse_binary(
            body, "application/x-npy", stream_id="s", model=None, n_sensors=3, max_readings=10
        )


def test_a_bytearray_float32_body_is_used_without_a_copy() -> None:
    """Bodies that arrive in several chunks are joined into a bytearray: the readings'
    array is a writable view of it (torch refuses read-only buffers; bytes get a copy)."""
    values = np.arange(12, dtype="<f4").reshape(4, 3)
    for body in (values.tobytes(), bytearray(values.tobytes())):
        parsed = parse_binary(
            body,
            "application/octet-stream",
            stream_id="s",
            model=None,
            n_sensors=3,
            max_readings=10,
        )
        assert parsed.matrix is not None and parsed.matrix.flags.writeable
        assert np.array_equal(parsed.matrix, values)
        assert np.shares_memory(parsed.matrix, body) == isinstance(body, bytearray)
