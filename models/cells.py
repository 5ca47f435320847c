"""A table of text cells as float64, and, where a cell is not a number, a refusal that says
what the cells are and what to do about them: a column of words that is no sensor can be left
out, a column of times named as the time index."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.ignored_columns import ignore_hint
from models.readings import DataError, check_finite
from models.timestamps import TIMESTAMP_COLUMNS, looks_like_time


def parse_numeric(
    path: Path,
    cells: list[list[str]],
    columns: Sequence[str],
    lines: Sequence[int],
    *,
    named: bool = False,
) -> np.ndarray:
    """Parse a table of strings to float64; on failure, refuse at the first offending cell.
    ``named``: the columns are a header's names, which a user can change or leave out."""
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        raise _not_numbers(path, cells, columns, lines, named=named) from None
    check_finite(path, values, columns, lines)
    return values


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _not_numbers(
    path: Path,
    cells: list[list[str]],
    columns: Sequence[str],
    lines: Sequence[int],
    *,
    named: bool,
) -> DataError:
    """The refusal at the first cell that is not a number, with advice for every column that
    holds such cells (each judged by its first one)."""
    first: tuple[int, int] | None = None
    example: dict[int, str] = {}  # column -> its first cell that is not a number
    for j in range(len(columns)):
        try:  # most columns are numbers throughout: passed at numpy's speed
            np.array([row[j] for row in cells], dtype=np.float64)
            continue
        except ValueError:
            pass
        for i, row in enumerate(cells):
            if not _is_number(row[j]):
                example[j] = row[j].strip()
                if first is None or i < first[0]:
                    first = (i, j)
                break
    assert first is not None, "np.array refused a table whose every cell is a number"
    at_row, at_column = first
    reason = f"value {example[at_column]!r} is not a number"
    if named:
        reason += "".join(f"; {advice}" for advice in _advice(columns, example))
    return DataError(path, reason, line=lines[at_row], column=columns[at_column])


_LETTER = re.compile(r"[^\W\d_]")
"""A letter of any alphabet: what tells a column of words from numbers written oddly."""


def _advice(columns: Sequence[str], example: dict[int, str]) -> list[str]:
    """What to do with header columns that hold cells that are not numbers: a column of times
    is named as the time index or left out, a column of words left out if it is no sensor."""
    times = [columns[j] for j, text in example.items() if looks_like_time(text)]
    words = [
        columns[j]
        for j, text in example.items()
        if columns[j] not in times and _LETTER.search(text) is not None
    ]
    first, *others = TIMESTAMP_COLUMNS
    advice = [
        f"column {name!r} holds times: to make it the time index, name it {first} (or "
        f"{', '.join(others)}); or leave it out with {ignore_hint([name])}"
        for name in times
    ]
    if words:
        one = len(words) == 1
        advice.append(
            f"if {', '.join(words)} {'is not a sensor' if one else 'are not sensors'}, leave "
            f"{'it' if one else 'them'} out with {ignore_hint(words)}"
        )
    return advice
