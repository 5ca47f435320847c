"""Readings checked against a model: one float32 matrix, validated vectorised, with
precise errors on the slow path.

A decoded request (:class:`ParsedRequest`, built by ``service.wire.decode``) holds its
readings either as a matrix already or in their JSON form; numpy converts the whole batch
at once and checks it. Only when that fails does a per-reading pass run to say exactly
which field of which reading is wrong.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

from service.errors import FieldError, InvalidReading, UnknownSensor

MAX_STREAM_ID = 256
MAX_READING_ID = 256
_READING_KEYS = frozenset({"values", "timestamp", "reading_id"})
_MAX_REPORTED = 20  # field errors listed in one problem body
FLOAT32_MAX = 3.4028234663852886e38
_INFINITIES = (math.inf, -math.inf)
EXACT_INTEGERS = 2.0**53  # every integer up to this converts to float64 exactly
EARLIEST_TIMESTAMP = -2208988800.0  # 1900-01-01T00:00:00Z
LATEST_TIMESTAMP = 253402214400.0  # 9999-12-31T00:00:00Z: a day short of datetime's limit
# Outside these, a stored time could not be shown again as a date (and a client sending
# milliseconds as seconds lands beyond the year 9999).


def timestamp_range_problem(seconds: float) -> str | None:
    """Why Unix ``seconds`` can't be a reading's time, or None when it can."""
    if EARLIEST_TIMESTAMP <= seconds <= LATEST_TIMESTAMP:
        return None
    hint = " (milliseconds? send seconds)" if seconds > LATEST_TIMESTAMP else ""
    return f"must lie between 1900-01-01 and 9999-12-31 UTC{hint}"


@dataclass(slots=True)
class ParsedRequest:
    """A scoring request before it meets a model: readings still in their JSON form."""

    stream_id: str
    model: str | None
    readings: list[Any] | None  # JSON: one entry per reading (list or object)
    matrix: np.ndarray | None  # binary bodies arrive as a matrix already
    single: bool  # the request used "reading", so the reply is a single result
    # The body holds a JSON true/false somewhere: numpy would read a boolean in a reading as
    # 1.0/0.0, so such bodies take the per-reading path, which refuses booleans.
    may_hold_booleans: bool = False
    # The body's only strings are the top-level keys and values: numpy may then convert the
    # readings to float64 directly, skipping the type discovery that would spot a string.
    only_top_strings: bool = False


@dataclass(slots=True)
class Readings:
    """A validated batch: values in manifest order plus the optional per-reading extras."""

    values: np.ndarray  # float32 (b, n_sensors), C-contiguous, all finite
    reading_ids: list[str | None] | None  # client ids (None entries get generated ones)
    timestamps: np.ndarray | None  # float64 (b,), NaN where the client sent none
    # The largest absolute value, when validation already found it (None: not known).
    magnitude: float | None = None


_ALLOWED = r"[^/\x00-\x1f\x7f-\x9f]"
STREAM_ID_PATTERN = rf"^{_ALLOWED}*[^/\s\x00-\x1f\x7f-\x9f]{_ALLOWED}*$"
"""The rule below for the OpenAPI document, as far as a pattern can say it (JSON Schema's
patterns have no Unicode categories: other unprintable characters are refused too)."""


def stream_id_problem(stream_id: str) -> str | None:
    """Why a stream id is refused, or None. One rule for scoring, feedback and the stream
    routes: an id must fit in one URL path segment (``GET /v1/streams/{id}``), so no "/".
    """
    if not stream_id.strip():
        return "a non-empty string"
    if len(stream_id) > MAX_STREAM_ID:
        return f"at most {MAX_STREAM_ID} characters"
    if "/" in stream_id or not stream_id.isprintable():
        return 'no "/" and no control characters (it must fit in one URL path segment)'
    return None


def to_readings(
    parsed: ParsedRequest, sensors: list[str], sensor_index: dict[str, int]
) -> Readings:
    """Validate against the model's sensors and return one float32 matrix."""
    n = len(sensors)
    if parsed.matrix is not None:
        if parsed.matrix.shape[1] != n:  # a JSON batch (binary bodies are checked on arrival)
            return _slow_readings(parsed.matrix.tolist(), sensors, sensor_index)
        return Readings(_finite_float32(parsed.matrix, sensors), None, None)
    readings = parsed.readings
    assert readings is not None
    if parsed.may_hold_booleans:
        return _slow_readings(readings, sensors, sensor_index)
    if parsed.only_top_strings:
        plain = _plain_float32(readings, n)
        if plain is not None:
            return Readings(plain[0], None, None, plain[1])
    try:
        array = np.array(readings)
    except (ValueError, TypeError, OverflowError):
        array = None
    if array is not None and array.ndim == 2 and array.dtype.kind in "fiu" and array.shape[1] == n:
        return Readings(_finite_float32(array, sensors), None, None)
    return _slow_readings(readings, sensors, sensor_index)


def _plain_float32(readings: list[Any], n_sensors: int) -> tuple[np.ndarray, float] | None:
    """The fast path for lists of numbers (no strings or booleans in the body): straight to
    float64, skipping numpy's type discovery; with the largest absolute value. None for
    anything else,
    including values whose float32 is not finite, and integers above 2**53 (whose float64
    rounding could move their float32 by one step): the general path then gives the
    precise answer or error."""
    try:
        array = np.array(readings, dtype=np.float64)
    except (ValueError, TypeError, OverflowError):
        return None
    if array.ndim != 2 or array.shape[1] != n_sensors:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        values = array.astype(np.float32)
    magnitude = float(np.abs(array).max(initial=0.0))
    if not np.isfinite(values).all() or magnitude > EXACT_INTEGERS:
        return None
    return values, magnitude


def _finite_float32(array: np.ndarray, sensors: list[str]) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        values = np.ascontiguousarray(array, dtype=np.float32)
    finite = np.isfinite(values)
    if finite.all():
        return values
    rows, cols = np.nonzero(~finite)
    errors = [
        FieldError(
            f"values[{c}]",
            f"sensor {sensors[c]}: {_describe_nonfinite(array[r, c])}",
            reading_index=r,
        )
        for r, c in zip(rows[:_MAX_REPORTED].tolist(), cols[:_MAX_REPORTED].tolist(), strict=True)
    ]
    raise InvalidReading(
        f"{len(rows)} value(s) are not finite float32 numbers (first: reading {rows[0]}, "
        f"sensor {sensors[cols[0]]}: {_describe_nonfinite(array[rows[0], cols[0]])})",
        errors=errors,
    )


def _describe_nonfinite(value: Any) -> str:
    number = float(value)
    if math.isnan(number):
        return "NaN is not a finite number"
    if math.isinf(number):
        return "infinity is not a finite number"
    return f"{number!r} overflows float32"


def json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _slow_readings(
    readings: list[Any], sensors: list[str], sensor_index: dict[str, int]
) -> Readings:
    """Per-reading conversion: named sensors, wrapped readings and every error case."""
    n = len(sensors)
    rows: list[list[float]] = []
    ids: list[str | None] = []
    stamps: list[float] = []
    errors: list[FieldError] = []
    for i, reading in enumerate(readings):
        reading_id: str | None = None
        stamp = math.nan
        if isinstance(reading, dict):
            unknown = reading.keys() - _READING_KEYS
            if unknown:
                errors.append(
                    FieldError(
                        ", ".join(sorted(unknown)),
                        "not a field of a reading (values, timestamp, reading_id)",
                        i,
                    )
                )
                continue
            if "values" not in reading:
                errors.append(FieldError("values", "required", i))
                continue
            reading_id, id_error = _reading_id(reading.get("reading_id"))
            if id_error:
                errors.append(FieldError("reading_id", id_error, i))
            stamp, stamp_error = _timestamp(reading.get("timestamp"))
            if stamp_error:
                errors.append(FieldError("timestamp", stamp_error, i))
            values = reading["values"]
        else:
            values = reading
        row = _row(values, i, sensors, sensor_index, errors)
        if row is not None:
            rows.append(row)
        ids.append(reading_id)
        stamps.append(stamp)
        if len(errors) >= _MAX_REPORTED:
            break
    if errors:
        cls = (
            UnknownSensor if any("unknown sensor" in e.message for e in errors) else InvalidReading
        )
        first = errors[0]
        raise cls(
            f"reading {first.reading_index}: {first.field}: {first.message}"
            + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""),
            errors=errors,
        )
    values_matrix = _finite_float32(np.array(rows, dtype=np.float64).reshape(-1, n), sensors)
    client_ids = ids if any(x is not None for x in ids) else None
    if client_ids is not None:
        given = [x for x in client_ids if x is not None]
        if len(set(given)) != len(given):
            seen: set[str] = set()
            duplicates = []
            for i, x in enumerate(client_ids):
                if x is not None and x in seen:
                    duplicates.append(FieldError("reading_id", f"duplicate id {x!r}", i))
                if x is not None:
                    seen.add(x)
            raise InvalidReading("reading ids must be unique within a request", errors=duplicates)
    timestamps = np.array(stamps, dtype=np.float64)
    return Readings(
        values_matrix,
        client_ids,
        None if np.isnan(timestamps).all() else timestamps,
    )


def matrix_of_rows(
    rows: list[Any], sensors: list[str], sensor_index: dict[str, int], field: str
) -> np.ndarray:
    """Bare readings (lists in manifest order or objects keyed by sensor name) with the
    scoring endpoint's per-value checks, for callers outside the hot path (feedback's
    carried readings); errors are named under ``field`` (e.g. ``readings.values[2]``)."""
    errors: list[FieldError] = []
    matrix: list[list[float]] = []
    for i, values in enumerate(rows):
        row = _row(values, i, sensors, sensor_index, errors)
        if row is not None:
            matrix.append(row)
        if len(errors) >= _MAX_REPORTED:
            break
    if errors:
        named = [
            FieldError(field + e.field.removeprefix("values"), e.message, e.reading_index)
            for e in errors
        ]
        cls = UnknownSensor if any("unknown sensor" in e.message for e in named) else InvalidReading
        first = named[0]
        raise cls(
            f"reading {first.reading_index}: {first.field}: {first.message}"
            + (f" (and {len(named) - 1} more)" if len(named) > 1 else ""),
            errors=named,
        )
    return _finite_float32(np.array(matrix, dtype=np.float64).reshape(-1, len(sensors)), sensors)


def _row(
    values: Any,
    index: int,
    sensors: list[str],
    sensor_index: dict[str, int],
    errors: list[FieldError],
) -> list[float] | None:
    n = len(sensors)
    if isinstance(values, dict):
        unknown = [name for name in values if name not in sensor_index]
        if unknown:
            errors.append(
                FieldError(
                    "values",
                    f"unknown sensor(s) {', '.join(map(repr, unknown[:5]))}"
                    + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
                    + "; see GET /v1/models/{name} for the sensor list",
                    index,
                )
            )
            return None
        missing = [name for name in sensors if name not in values]
        if missing:
            errors.append(
                FieldError(
                    "values",
                    f"missing sensor(s) {', '.join(map(repr, missing[:5]))}"
                    + (f" and {len(missing) - 5} more" if len(missing) > 5 else ""),
                    index,
                )
            )
            return None
        ordered = [values[name] for name in sensors]
        labels = [f"values.{name}" for name in sensors]
    elif isinstance(values, list):
        if len(values) != n:
            errors.append(
                FieldError(
                    "values", f"expected {n} values in manifest order, got {len(values)}", index
                )
            )
            return None
        ordered = values
        labels = [f"values[{j}]" for j in range(n)]
    else:
        errors.append(
            FieldError(
                "values",
                f"expected a list of {n} numbers or an object keyed by sensor name, "
                f"got {json_type(values)}",
                index,
            )
        )
        return None
    ok = True
    for label, value in zip(labels, ordered, strict=True):
        if isinstance(value, bool) or not isinstance(value, int | float):
            errors.append(FieldError(label, f"expected a number, got {json_type(value)}", index))
            ok = False
        elif abs(value) > FLOAT32_MAX or value != value:  # exact for big ints, unlike isfinite
            what = (
                "NaN"
                if value != value
                else "infinity"
                if value in _INFINITIES
                else repr(value)
                if isinstance(value, float)
                else "an integer this large"
            )
            errors.append(FieldError(label, f"{what} is not a finite float32 number", index))
            ok = False
        if len(errors) >= _MAX_REPORTED:
            break
    return [float(v) for v in ordered] if ok else None


def _reading_id(value: object) -> tuple[str | None, str | None]:
    if value is None:
        return None, None
    if not isinstance(value, str) or not value or len(value) > MAX_READING_ID:
        return None, f"a non-empty string of at most {MAX_READING_ID} characters"
    if not value.isascii():
        try:  # JSON's \ud800 escapes decode to lone surrogates, which UTF-8 cannot store
            value.encode()
        except UnicodeEncodeError:
            return (
                None,
                "must be Unicode text, not a lone surrogate (an unpaired \\uD800-\\uDFFF escape)",
            )
    return value, None


def _timestamp(value: object) -> tuple[float, str | None]:
    """Unix seconds, or an ISO 8601 string with a time zone."""
    if value is None:
        return math.nan, None
    if isinstance(value, bool):
        return math.nan, "expected Unix seconds or an ISO 8601 string, got a boolean"
    if isinstance(value, int | float):
        # Compared before float(): the standard parser hands over integers of any size.
        if value != value or abs(value) > sys.float_info.max:
            return math.nan, "must be a finite number of Unix seconds"
        seconds = float(value)
        return seconds, timestamp_range_problem(seconds)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return math.nan, f"{value!r} is not an ISO 8601 date-time"
        if parsed.tzinfo is None:
            return math.nan, "an ISO 8601 timestamp needs a time zone (e.g. Z or +00:00)"
        seconds = parsed.timestamp()
        return seconds, timestamp_range_problem(seconds)
    return math.nan, f"expected Unix seconds or an ISO 8601 string, got {json_type(value)}"
