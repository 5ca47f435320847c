"""A file's timestamp column: ISO 8601 times or numbers, never decreasing.

Anything else is refused, not guessed: the order of ``01/02/2024`` cannot be checked without
guessing day and month, and training splits by time. Errors carry the line and column; the
loaders (``models.data``) add the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

TIMESTAMP_COLUMNS = ("timestamp", "datetime", "time", "date", "ts")
"""Header names (case-insensitive) recognised as the time index rather than a sensor."""

TIMESTAMP_FORMATS = (
    "ISO 8601 such as 2026-01-31, 2026-01-31 08:00:00 or 2026-01-31T08:00:00.5+01:00, "
    "or numbers such as seconds since the start"
)
"""What a timestamp column may hold, as error messages say it."""

_ISO_8601 = re.compile(
    r"(?P<local>(?P<year>\d{4})-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)?)"
    r"(?P<zone>Z|(?P<sign>[+-])(?P<hours>\d{2})(?::?(?P<minutes>\d{2}))?)?"
)


DATE = re.compile(r"\d{1,4}[-./]\d{1,2}[-./]\d{1,4}")
"""A date alone, in any common order (2026-01-31, 31.01.2026, 01/31/2026)."""
TIME_OF_DAY = re.compile(r"\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?")
"""A time of day alone (08:00, 08:00:00, 08:00:00.5)."""


def looks_like_time(text: str) -> bool:
    """Whether a cell that is not a number holds a date or a time, in any format: what a time
    column not recognised as one (``Time (UTC)``, ``Zeit``) holds.

    >>> [looks_like_time(t) for t in ("2026-01-31T08:00:00+01:00", "31.01.2026 08:00", "STOP")]
    [True, True, False]
    """
    return bool(DATE.search(text) or TIME_OF_DAY.search(text))


class TimestampError(ValueError):
    """A timestamp cell that cannot be used, with where it is."""

    def __init__(self, reason: str, *, line: int, column: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.column = column


def parse_timestamps(texts: list[str], lines: Sequence[int], column: str) -> np.ndarray:
    """Numbers or ISO 8601, never decreasing (a repeat is a clock coarser than the sampling).
    The first cell decides which of the two kinds the column holds.

    Local times without a UTC offset go back an hour when clocks change to winter time; they
    are refused like any other step back (the order of the readings in that hour cannot be
    told), and the refusal says to write the offset."""
    for text, line in zip(texts, lines, strict=True):
        if not text:
            raise TimestampError(
                "timestamp is empty: every reading needs one", line=line, column=column
            )
    zoneless = False
    if _finite_number(texts[0]) is not None:
        stamps = _numeric_timestamps(texts, lines, column)
    else:
        stamps = _iso_timestamps(texts, lines, column)
        first = _ISO_8601.fullmatch(texts[0])
        zoneless = first is not None and first["zone"] is None
    backwards = np.flatnonzero(stamps[1:] < stamps[:-1])
    if backwards.size:
        row = int(backwards[0]) + 1
        reason = (
            f"timestamp {texts[row]!r} is earlier than the previous {texts[row - 1]!r}: "
            "readings must be in time order (training splits by time)"
        )
        if zoneless:
            reason += (
                "; these times give no UTC offset: if the clock went back an hour (summer to "
                "winter time), write them with their offset (2025-10-26T02:00:00+01:00) or in "
                "UTC"
            )
        raise TimestampError(reason, line=lines[row])
    return stamps


def _finite_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _numeric_timestamps(texts: list[str], lines: Sequence[int], column: str) -> np.ndarray:
    stamps = np.empty(len(texts), dtype=np.float64)
    for i, (text, line) in enumerate(zip(texts, lines, strict=True)):
        value = _finite_number(text)
        if value is None:
            raise TimestampError(
                f"timestamp {text!r} is not a finite number, as the first one {texts[0]!r} is "
                "(a timestamp column holds numbers or ISO 8601 times, not both)",
                line=line,
                column=column,
            )
        stamps[i] = value
    return stamps


def _iso_timestamps(texts: list[str], lines: Sequence[int], column: str) -> np.ndarray:
    """datetime64[ns]; times with a zone are converted to UTC, and a column must either give
    zones throughout or nowhere (local times cannot be ordered against UTC ones)."""
    matches: list[re.Match[str]] = []
    for text, line in zip(texts, lines, strict=True):
        match = _ISO_8601.fullmatch(text)
        if match is None:
            raise TimestampError(
                f"timestamp {text!r} is not ISO 8601 or a number (other formats are refused, "
                f"not guessed: 01/02 could be January or February); write {TIMESTAMP_FORMATS}",
                line=line,
                column=column,
            )
        if matches and (match["zone"] is None) != (matches[0]["zone"] is None):
            raise TimestampError(
                f"timestamp {text!r} {'gives' if match['zone'] else 'lacks'} a time zone, "
                f"unlike the first one {texts[0]!r}: give zones throughout or nowhere",
                line=line,
                column=column,
            )
        if not 1678 <= int(match["year"]) <= 2261:  # what datetime64[ns] holds
            raise TimestampError(
                f"timestamp {text!r} is outside the years 1678-2261", line=line, column=column
            )
        matches.append(match)
    local = [match["local"] for match in matches]
    try:
        stamps = np.array(local, dtype="datetime64[ns]")
    except ValueError:
        for text, line, part in zip(texts, lines, local, strict=True):
            try:
                np.datetime64(part, "ns")
            except ValueError as exc:
                raise TimestampError(
                    f"timestamp {text!r} is not a valid time: {exc}", line=line, column=column
                ) from None
        raise
    if matches[0]["zone"] is not None:
        offsets = [_zone_minutes(match) for match in matches]
        stamps = stamps - np.array(offsets, dtype="timedelta64[m]")
    return stamps


def _zone_minutes(match: re.Match[str]) -> int:
    """The UTC offset an ISO 8601 match gives, in minutes (``Z``: 0)."""
    if match["zone"] == "Z":
        return 0
    minutes = 60 * int(match["hours"]) + int(match["minutes"] or 0)
    return -minutes if match["sign"] == "-" else minutes
