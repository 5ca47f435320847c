"""Which character separates a CSV file's fields: the one that splits the header and the first
readings into the same number of fields.

Counting the header alone is not enough: a ``;`` file from a European spreadsheet may name its
columns ``Temp 0, °C`` (as many commas as semicolons in the header) and write ``55,0488`` (as
many commas as semicolons in every row), and read with ``,`` it gave "ragged row: 1 fields" or
a value error about the wrong cells.
"""

from __future__ import annotations

import csv
import io
from itertools import islice
from pathlib import Path

from models.readings import DataError

SEPARATORS = ("\t", ";", ",")
"""The candidates, in the order a tie between them is settled: a tab or a ``;`` that splits
every sampled line alike is a separator, while a comma also sits inside numbers and names."""

SAMPLED_ROWS = 20
"""Readings after the header that a candidate must split as the header does."""


def separator_name(separator: str) -> str:
    """The separator as a message names it.

    >>> separator_name(";"), separator_name("\\t")
    ("';'", 'tab')
    """
    return "tab" if separator == "\t" else repr(separator)


def detect_separator(path: Path, text: str) -> str:
    """A tab or a ``;`` that splits the header and the first readings alike into more than one
    field, in that order; else a comma that does; where none does (a ragged row among the
    first), the one the header holds most of outside quotes, so that the ragged row is refused
    by name. A comma loses to the others because it also sits inside numbers and names: a
    ``;`` file whose names hold commas and whose numbers are written with decimal commas
    splits alike, and wider, on commas."""
    head = _head(text, 2 * (1 + SAMPLED_ROWS))
    for separator in SEPARATORS:
        width = _common_width(head, separator)
        if width is not None and width > 1:
            return separator
    first_line = text.split("\n", 1)[0]
    unquoted = "".join(first_line.split('"')[::2])
    counts = {separator: unquoted.count(separator) for separator in (",", ";", "\t")}
    separator, count = max(counts.items(), key=lambda item: item[1])
    if count == 0:
        raise DataError(path, "header has a single column; expected ',', ';' or tab separators")
    return separator


def _head(text: str, lines: int) -> str:
    """The first ``lines`` lines, without copying the rest of a large file."""
    end = -1
    for _ in range(lines):
        end = text.find("\n", end + 1)
        if end < 0:
            return text
    return text[:end]


def _common_width(text: str, separator: str) -> int | None:
    """Fields per line in the header and the first readings when all have as many, else None.
    Blank lines are passed over, as the loader passes them over."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=separator)
    try:
        rows = [row for row in islice(reader, 1 + SAMPLED_ROWS) if "".join(row).strip()]
    except csv.Error:  # a field over the csv module's limit: the loader says so
        return None
    widths = {len(row) for row in rows}
    return widths.pop() if len(widths) == 1 else None
