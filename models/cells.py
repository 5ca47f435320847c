"""A table of text cells as float64, and, where a cell is no finite number, a refusal that
says what the cells are, counts them per column and says what to do: missing values are the
user's to fill (never filled here), a decimal comma is exported as a point (never guessed), a
column of words that is no sensor is left out, a column of times named as the time index."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from models.ignored_columns import ignore_hint
from models.readings import DataError
from models.timestamps import TIMESTAMP_COLUMNS, looks_like_time

MISSING_TEXTS = frozenset({"", "na", "n/a", "#n/a", "nan", "null", "none", "nil", "-", "?"})
"""Cells (stripped, any case) that spreadsheets, databases and R write where a value is missing."""

MISSING, INFINITE, TEXT = "missing", "infinite", "text"
"""What a cell that is no finite number is, in the order a refusal counts them."""
_LABELS = {
    MISSING: ("missing value", "missing values"),
    INFINITE: ("infinite value", "infinite values"),
    TEXT: ("cell that is not a number", "cells that are not numbers"),
}


def parse_numeric(
    path: Path,
    cells: list[list[str]],
    columns: Sequence[str],
    lines: Sequence[int],
    *,
    named: bool = False,
) -> np.ndarray:
    """Parse a table of strings to float64, every value finite; otherwise refuse at the first
    offending cell, counting them all. ``named``: the columns are a header's names, which a
    user can change or leave out."""
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        pass
    else:
        if np.isfinite(values).all():
            return values
    raise _refusal(path, cells, columns, lines, named=named)


def cell_kind(text: str) -> str | None:
    """MISSING, INFINITE or TEXT for a cell that is no finite number, None for one that is.

    >>> [cell_kind(t) for t in ("1.5", " NA ", "", "NaN", "-inf", "STOP", "55,04")]
    [None, 'missing', 'missing', 'missing', 'infinite', 'text', 'text']
    """
    stripped = text.strip()
    if stripped.lower() in MISSING_TEXTS:
        return MISSING
    try:
        value = float(stripped)
    except ValueError:
        return TEXT
    if math.isnan(value):
        return MISSING
    return INFINITE if math.isinf(value) else None


@dataclass
class _Column:
    """One column's cells that are no finite number."""

    name: str
    numbers: int = 0
    first_row: int = -1
    first_text: str = ""
    first_kind: str = ""
    example: str | None = None
    """Its first cell that is not a number at all (what it holds instead)."""
    counts: Counter[str] = field(default_factory=Counter)


def _scan(texts: list[str], name: str) -> _Column:
    column = _Column(name)
    try:  # most columns are numbers throughout: passed at numpy's speed
        numbers = np.array(texts, dtype=np.float64)
    except ValueError:
        suspects: Sequence[int] = range(len(texts))
    else:
        suspects = np.flatnonzero(~np.isfinite(numbers)).tolist()
        column.numbers = len(texts) - len(suspects)
    for i in suspects:
        kind = cell_kind(texts[i])
        if kind is None:
            column.numbers += 1
            continue
        column.counts[kind] += 1
        if column.first_row < 0:
            column.first_row, column.first_text, column.first_kind = i, texts[i].strip(), kind
        if kind == TEXT and column.example is None:
            column.example = texts[i].strip()
    return column


def _refusal(
    path: Path,
    cells: list[list[str]],
    columns: Sequence[str],
    lines: Sequence[int],
    *,
    named: bool,
) -> DataError:
    """The refusal at the first cell that is no finite number, with how many such cells each
    column holds and what to do about them."""
    scanned = [_scan([row[j] for row in cells], name) for j, name in enumerate(columns)]
    bad = [column for column in scanned if column.counts]
    assert bad, "refused a table whose every cell is a finite number"
    first = min(bad, key=lambda column: column.first_row)  # the leftmost of a row's
    if first.first_kind == MISSING:
        what = "an empty cell" if not first.first_text else repr(first.first_text)
        said = f"missing value ({what})"
    elif first.first_kind == INFINITE:
        said = f"value {first.first_text!r} is infinite"
    else:
        said = f"value {first.first_text!r} is not a number"
    totals = []
    for kind in (MISSING, INFINITE, TEXT):
        counted = [column for column in bad if column.counts[kind]]
        if counted:
            n = sum(column.counts[kind] for column in counted)
            label = _LABELS[kind][n != 1]
            totals.append(f"{n} {label} in all, in {_columns(counted, kind)}")
    reason = "; ".join([said, *totals, *_advice(bad, named=named)])
    return DataError(path, reason, line=lines[first.first_row], column=first.name)


def _columns(columns: list[_Column], kind: str) -> str:
    if len(columns) == 1:
        return f"column {columns[0].name}"
    # Quoted where a name holds what the list uses (a ';' file's "Temp 0, °C").
    listed = ", ".join(
        f"{repr(c.name) if ',' in c.name or '(' in c.name else c.name} ({c.counts[kind]})"
        for c in columns[:8]
    )
    return f"columns {listed}" + (f" and {len(columns) - 8} more" if len(columns) > 8 else "")


DECIMAL_COMMA = re.compile(r"[+-]?(?:\d{1,3}(?:\.\d{3})+|\d*),\d+(?:[eE][+-]?\d+)?")
"""A number written with a decimal comma (55,0488; 1.234,5), as European spreadsheets export."""

_LETTER = re.compile(r"[^\W\d_]")
"""A letter of any alphabet: what tells a column of words from numbers written oddly."""


def _advice(bad: list[_Column], *, named: bool) -> list[str]:
    """What to do: missing and infinite values are filled or their readings dropped by the
    user (they are never filled here); a decimal comma is exported as a point; a header column
    without a number in it that holds times is named as the time index or left out, one of
    words is left out if it is no sensor; other cells that are not numbers are fixed or their
    readings dropped."""
    advice = []
    gaps = [kind for kind in (MISSING, INFINITE) if any(c.counts[kind] for c in bad)]
    if gaps:
        advice.append(
            f"{' and '.join(gaps)} values are refused, not filled in: fill them or drop those "
            "readings first"
        )
    texts = [c for c in bad if c.example is not None]
    times, words, others = [], [], []
    decimal_comma = next(
        (c.example for c in texts if c.example and DECIMAL_COMMA.fullmatch(c.example)), None
    )
    for column in texts:
        assert column.example is not None
        if DECIMAL_COMMA.fullmatch(column.example):
            continue
        if named and not column.numbers and looks_like_time(column.example):
            times.append(column.name)
        elif named and not column.numbers and _LETTER.search(column.example):
            words.append(column.name)
        else:
            others.append(column.name)
    if decimal_comma is not None:
        # Not read as a decimal point: "1,234" is also a thousand, and a guess that changes
        # every value by a factor would go unnoticed.
        advice.append(
            f"{decimal_comma!r} has a decimal comma: export the file with a decimal point "
            "(a comma is not read as one)"
        )
    first, *rest = TIMESTAMP_COLUMNS
    advice += [
        f"column {name!r} holds times: to make it the time index, name it {first} (or "
        f"{', '.join(rest)}); or leave it out with {ignore_hint([name])}"
        for name in times
    ]
    if words:
        one = len(words) == 1
        advice.append(
            f"if {', '.join(words)} {'is not a sensor' if one else 'are not sensors'}, leave "
            f"{'it' if one else 'them'} out with {ignore_hint(words)}"
        )
    if others:
        advice.append("cells that are not numbers are refused: fix them or drop those readings")
    return advice
