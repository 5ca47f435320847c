"""Scoring request bodies to a :class:`ParsedRequest`: JSON objects, float32 rows and .npy arrays.

The happy path never builds a Python object per reading: a batch of plain number lists
goes from simdjson straight into one float64 buffer; anything else is parsed by orjson and
left for :func:`service.scoring.payload.to_readings` to convert and check against a model.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np
import orjson
import simdjson

from service.errors import BatchTooLarge, FieldError, InvalidRequest, MalformedBody
from service.scoring.manifest import NAME_MAX_LENGTH, NAME_PATTERN
from service.scoring.payload import (
    EXACT_INTEGERS,
    ParsedRequest,
    json_type,
    stream_id_problem,
)
from service.wire.json_keys import check_no_repeats, keys_may_repeat, loads_refusing_repeats
from service.wire.media import FLOAT32_TYPES

_TOP_KEYS = frozenset({"stream_id", "model", "reading", "readings"})
_PLAIN_BATCH_KEYS = frozenset({"stream_id", "model", "readings"})
_SIMDJSON_LEN_CAP = 0xFFFFFF  # pysimdjson's len() of an array saturates here
_PLAIN_BATCH_MIN_BYTES = 4096  # below this orjson is as quick and simdjson's set-up shows
_MODEL_NAME = re.compile(NAME_PATTERN)
DTYPES = {"float32": "<f4", "float64": "<f8"}
"""Raw binary bodies: little-endian, float32 unless the request says otherwise."""


def _check_stream_id(stream_id: object) -> str:
    if not isinstance(stream_id, str):
        raise InvalidRequest(
            "stream_id must be a non-empty string",
            errors=[FieldError("stream_id", "required: a non-empty string")],
        )
    problem = stream_id_problem(stream_id)
    if problem is not None:
        raise InvalidRequest(f"stream_id: {problem}", errors=[FieldError("stream_id", problem)])
    return stream_id


def _check_model(model: object) -> str | None:
    if model is None or (
        isinstance(model, str) and len(model) <= NAME_MAX_LENGTH and _MODEL_NAME.match(model)
    ):
        return model
    rule = f"a model name ({NAME_PATTERN}, at most {NAME_MAX_LENGTH} characters) or absent"
    raise InvalidRequest(f"model must be {rule}", errors=[FieldError("model", rule)])


def parse_json(body: bytes | bytearray, max_readings: int) -> ParsedRequest:
    if not body:
        raise MalformedBody("the request body is empty; send a JSON object")
    plain = _plain_batch(body, max_readings)
    if plain is not None:
        return plain
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        data = _lenient_or_raise(body, exc)
    if not isinstance(data, dict):
        raise InvalidRequest(
            "the body must be a JSON object with stream_id and reading or readings",
            errors=[FieldError("body", f"expected an object, got {json_type(data)}")],
        )
    unknown = data.keys() - _TOP_KEYS
    if unknown:
        raise InvalidRequest(
            f"unknown field(s): {', '.join(sorted(unknown))}",
            errors=[
                FieldError(name, "not a field of a scoring request") for name in sorted(unknown)
            ],
        )
    # A body with one colon per top-level key (a bare-list reading or batch) has no other
    # object and nothing to check; any other is checked when its colons are unaccounted.
    colons = body.count(b":")
    if colons != len(data) and keys_may_repeat(body, colons, _accounted_colons(data)):
        check_no_repeats(body)
    stream_id = _check_stream_id(data.get("stream_id"))
    model = _check_model(data.get("model"))
    # null is absent, as the documented schema allows (clients serialise unset fields so)
    has_one, has_many = data.get("reading") is not None, data.get("readings") is not None
    if has_one == has_many:
        raise InvalidRequest(
            "send exactly one of reading (one reading) or readings (a batch)",
            errors=[FieldError("readings", "exactly one of reading or readings is required")],
        )
    if has_one:
        readings = [data["reading"]]
    else:
        readings = data["readings"]
        if not isinstance(readings, list):
            raise InvalidRequest(
                "readings must be a list of readings",
                errors=[FieldError("readings", f"expected a list, got {json_type(readings)}")],
            )
        if not readings:
            raise InvalidRequest(
                "readings is empty: send at least one reading",
                errors=[FieldError("readings", "at least one reading is required")],
            )
        if len(readings) > max_readings:
            raise BatchTooLarge(
                f"{len(readings)} readings in one request; the maximum is {max_readings}",
                errors=[FieldError("readings", f"at most {max_readings} readings")],
            )
    top_strings = len(data) + isinstance(data.get("stream_id"), str) + isinstance(model, str)
    return ParsedRequest(
        stream_id,
        model,
        readings,
        None,
        has_one,
        _has_boolean(body),
        _quote_count_at_most(body, 2 * top_strings),
    )


def _accounted_colons(data: dict[str, Any]) -> int:
    """The colons of the body its parse accounts for: one per key kept in the objects a
    scoring body may hold (the request, wrapped readings and their sensor names), and those
    inside the strings where they occur (stream id, model, reading ids, ISO timestamps).
    A body holding anything else goes to the exact check, then is refused by the others."""
    accounted = len(data)
    for value in data.values():
        if isinstance(value, str):
            accounted += value.count(":")
    many = data.get("readings")
    for reading in many if isinstance(many, list) else (data.get("reading"),):
        if type(reading) is dict:  # exact types: the loop runs once per reading
            accounted += len(reading)
            stamp, reading_id = reading.get("timestamp"), reading.get("reading_id")
            if type(stamp) is str:
                accounted += stamp.count(":")
            if type(reading_id) is str:
                accounted += reading_id.count(":")
            values = reading.get("values")
            if type(values) is dict:
                accounted += len(values)
    return accounted


def _plain_batch(body: bytes | bytearray, max_readings: int) -> ParsedRequest | None:
    """A batch whose readings are all lists of plain numbers, parsed by simdjson straight
    into a float64 matrix, without orjson's Python floats and numpy's conversion of them.
    None for any other body, including every body
    with something to refuse: the general path then parses it and names the problem, so
    both paths accept the same bodies and give the same values (a test compares them)."""
    if (
        len(body) < _PLAIN_BATCH_MIN_BYTES
        or not _quote_count_at_most(body, 10)  # keys and the stream id and model only
        or _has_boolean(body)
    ):
        return None
    try:
        document = simdjson.Parser().parse(body)  # copies it: the matrix never views the body
        if not isinstance(document, simdjson.Object):
            return None
        keys = list(document.keys())
        if len(set(keys)) != len(keys) or not set(keys) <= _PLAIN_BATCH_KEYS:
            return None  # a repeated key: orjson keeps the last, simdjson finds the first
        stream_id, model = document.get("stream_id"), document.get("model")
        readings = document.get("readings")
        if (
            not isinstance(stream_id, str)
            or stream_id_problem(stream_id) is not None
            or not (model is None or (isinstance(model, str) and model))
            or not isinstance(readings, simdjson.Array)
            or not 1 <= len(readings) <= max_readings
        ):
            return None
        n_readings = len(readings)
        widths = {len(row) if isinstance(row, simdjson.Array) else -1 for row in readings}
        # as_buffer flattens nested lists: one "[" per reading and one around them (with
        # none in the strings, even escaped) proves every reading is a flat list.
        if "[" in stream_id or "[" in (model or "") or body.count(b"[") != 1 + n_readings:
            return None
        flat = np.frombuffer(readings.as_buffer(of_type="d"), dtype=np.float64)
    except (ValueError, TypeError, RuntimeError):  # RuntimeError: integers beyond 64 bits
        return None  # not JSON, or not numbers: the general path says what is wrong
    finally:
        document = readings = None  # frees the parser's tape (~8 bytes a body byte) now
    width = _common_width(widths, n_readings, flat.size)
    if width is None:
        return None
    matrix = flat.reshape(n_readings, width)
    if max(matrix.max(), -matrix.min()) > EXACT_INTEGERS:
        # Written as integers, these need the general path's exact conversion; it cannot be
        # told here, so any value this large (1e20 too) takes that path.
        return None
    return ParsedRequest(stream_id, model, None, matrix, False)


def _common_width(widths: set[int], n_rows: int, n_values: int) -> int | None:
    """The one length every row has, or None. pysimdjson's ``len`` stops counting at
    0xFFFFFF, so a length there proves nothing; the values' total must agree too."""
    if len(widths) != 1 or not 1 <= n_rows < _SIMDJSON_LEN_CAP:
        return None
    width = next(iter(widths))
    if not 1 <= width < _SIMDJSON_LEN_CAP or n_rows * width != n_values:
        return None
    return width


def _has_boolean(body: bytes | bytearray) -> bool:
    """Whether a JSON true or false may be in the body. Finds single bytes (memchr) rather
    than searching for b"true": "u" and "f" occur in no
    number and in no key of a plain-list body, only in strings such as the stream id."""
    for letter, word, offset in ((0x75, b"true", 2), (0x66, b"false", 0)):
        at = body.find(letter)
        while at != -1:
            if body[at - offset : at - offset + len(word)] == word:
                return True
            at = body.find(letter, at + 1)
    return False


def _quote_count_at_most(body: bytes | bytearray, limit: int) -> bool:
    """Whether ``body`` holds at most ``limit`` double quotes (found by memchr, stopping
    at the first one over, unlike ``bytes.count``)."""
    at = -1
    for _ in range(limit + 1):
        at = body.find(b'"', at + 1)
        if at == -1:
            return True
    return False


def _lenient_or_raise(body: bytes | bytearray, exc: orjson.JSONDecodeError) -> Any:
    """orjson refuses NaN/Infinity and overflowing numbers; the standard parser reads them so
    the reply can name the reading and field instead of a byte offset."""
    try:
        return loads_refusing_repeats(body)
    except (ValueError, RecursionError):
        raise MalformedBody(f"the body is not valid JSON: {exc}") from None


def check_query(stream_id: str | None, model: str | None, dtype: str | None) -> None:
    """A JSON body's request may carry the binary bodies' query parameters: the body's own
    fields are used, but a value no request could use is refused, as for a binary body."""
    if stream_id is not None:
        _check_stream_id(stream_id)
    _check_model(model)
    _check_dtype(dtype)


def _check_dtype(dtype: str | None) -> str:
    name = dtype or "float32"
    if name not in DTYPES:
        raise InvalidRequest(
            f"dtype {name!r} is not one of {', '.join(DTYPES)}",
            errors=[FieldError("dtype", f"one of {', '.join(DTYPES)}")],
        )
    return name


def parse_binary(
    body: bytes | bytearray,
    kind: str,
    *,
    stream_id: str | None,
    model: str | None,
    n_sensors: int,
    max_readings: int,
    dtype: str | None = None,
) -> ParsedRequest:
    """Raw little-endian rows of n_sensors (float32, or ``dtype``) or an ``.npy`` 2-D array
    (which says its own dtype)."""
    stream = _check_stream_id(stream_id)
    if kind in FLOAT32_TYPES:
        name = _check_dtype(dtype)
        row_bytes = np.dtype(DTYPES[name]).itemsize * n_sensors
        if not body or len(body) % row_bytes:
            raise InvalidRequest(
                f"a {name} body must hold whole readings of {n_sensors} values "
                f"({row_bytes} bytes each); got {len(body)} bytes",
                errors=[FieldError("body", f"length must be a positive multiple of {row_bytes}")],
            )
        matrix = np.frombuffer(body, dtype=DTYPES[name]).reshape(-1, n_sensors)
        if not matrix.flags.writeable:  # bytes: torch refuses read-only buffers
            matrix = matrix.copy()
    else:
        matrix = _load_npy(body, n_sensors)
    if len(matrix) > max_readings:
        raise BatchTooLarge(
            f"{len(matrix)} readings in one request; the maximum is {max_readings}",
            errors=[FieldError("body", f"at most {max_readings} readings")],
        )
    return ParsedRequest(stream, _check_model(model), None, matrix, False)


def _npy_header_problem(body: bytes | bytearray) -> str | None:
    """Checks the header against the body before numpy allocates what the header claims
    (a 100-byte body may declare a terabyte-sized array)."""
    stream = io.BytesIO(body)
    try:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(stream)
    except (ValueError, OSError, EOFError, TypeError) as exc:
        return str(exc)
    if dtype.hasobject:
        return f"it holds Python objects ({dtype}), not numbers"
    expected = math.prod(shape) * dtype.itemsize
    available = len(body) - stream.tell()
    if expected != available:
        return f"its header declares {shape} {dtype} ({expected} bytes) but {available} follow"
    return None


def _load_npy(body: bytes | bytearray, n_sensors: int) -> np.ndarray:
    problem = _npy_header_problem(body)
    if problem is not None:
        raise InvalidRequest(
            f"the body is not a readable .npy array: {problem}",
            errors=[FieldError("body", "a .npy file of shape (readings, sensors)")],
        )
    try:
        array = np.load(io.BytesIO(body), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InvalidRequest(
            f"the body is not a readable .npy array: {exc}",
            errors=[FieldError("body", "a .npy file of shape (readings, sensors)")],
        ) from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiu":
        raise InvalidRequest(
            "the .npy array must hold numbers",
            errors=[FieldError("body", f"numeric dtype required, got {array.dtype}")],
        )
    if array.ndim != 2 or array.shape[1] != n_sensors or array.shape[0] == 0:
        raise InvalidRequest(
            f"the .npy array has shape {array.shape}; expected (readings >= 1, {n_sensors})",
            errors=[FieldError("body", f"shape (readings, {n_sensors})")],
        )
    return array
