"""Cells that are not numbers: refused at the first, with what to do about their columns."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from models import cells
from models.cells import parse_numeric
from models.data import load_readings
from models.readings import DataError


def test_doctests() -> None:
    assert doctest.testmod(cells).failed == 0


def refusal(path: Path, text: str) -> DataError:
    path.write_text(text)
    with pytest.raises(DataError) as caught:
        load_readings(path)
    return caught.value


def test_a_column_of_words_is_told_how_to_be_left_out(tmp_path: Path) -> None:
    error = refusal(tmp_path / "a.csv", "timestamp,a,state\n2026-01-01,1,RUN\n2026-01-02,2,STOP\n")
    assert (error.line, error.column) == (2, "state")
    assert error.reason == (
        "value 'RUN' is not a number; 2 cells that are not numbers in all, in column state; "
        "if state is not a sensor, leave it out with --ignore-columns state"
    )
    two = refusal(tmp_path / "b.csv", "mode,a,Machine state\nauto,1,RUN\n")
    assert (two.line, two.column) == (2, "mode")
    assert two.reason.endswith(
        "if mode, Machine state are not sensors, leave them out with "
        "--ignore-columns mode 'Machine state'"
    )


@pytest.mark.parametrize(
    ("header", "row", "column"),
    [
        ("Time (UTC),a", "2026-01-05T08:00:00+01:00,1", "Time (UTC)"),
        ("a;Zeitstempel", "1;05.01.2026 08:00", "Zeitstempel"),
    ],
)
def test_a_column_of_times_is_told_to_be_named_as_the_time_index(
    tmp_path: Path, header: str, row: str, column: str
) -> None:
    error = refusal(tmp_path / "t.csv", f"{header}\n{row}\n")
    assert error.column == column
    assert (
        f"column {column!r} holds times: to make it the time index, name it timestamp (or "
        "datetime, time, date, ts); or leave it out with --ignore-columns " in error.reason
    )
    assert "not a sensor" not in error.reason


def test_columns_without_names_get_no_advice_about_names() -> None:
    with pytest.raises(DataError) as caught:
        parse_numeric(Path("d.dat"), [["1", "2"], ["3", "RUN"]], ["1", "2"], [1, 2])
    assert caught.value.reason == (
        "value 'RUN' is not a number; 1 cell that is not a number in all, in column 2; cells "
        "that are not numbers are refused: fix them or drop those readings"
    )
    assert (caught.value.line, caught.value.column) == (2, "2")


@pytest.mark.parametrize("gap", ["", "NA", "N/A", "null", "#N/A", "NaN", " nan ", "-", "?"])
def test_missing_values_are_said_to_be_missing_and_counted(tmp_path: Path, gap: str) -> None:
    """Empty and NA cells read "value '' is not a number", for the first one only."""
    rows = [["1", "2", "3"] for _ in range(6)]
    for i, j in ((1, 1), (2, 1), (4, 2)):
        rows[i][j] = gap
    error = refusal(tmp_path / "m.csv", "a,b,c\n" + "".join(",".join(r) + "\n" for r in rows))
    assert (error.line, error.column) == (3, "b")
    what = "an empty cell" if not gap else repr(gap.strip())
    assert error.reason == (
        f"missing value ({what}); 3 missing values in all, in columns b (2), c (1); missing "
        "values are refused, not filled in: fill them or drop those readings first"
    )


def test_every_kind_of_refused_cell_is_counted_with_its_advice(tmp_path: Path) -> None:
    body = "a,b,state\n1,2,RUN\n,inf,STOP\n3,ERR,RUN\n4,5,\n"
    error = refusal(tmp_path / "k.csv", body)
    assert (error.line, error.column) == (2, "state")  # the first, in reading order
    assert error.reason.split("; ") == [
        "value 'RUN' is not a number",
        "2 missing values in all, in columns a (1), state (1)",
        "1 infinite value in all, in column b",
        "4 cells that are not numbers in all, in columns b (1), state (3)",
        "missing and infinite values are refused, not filled in: fill them or drop those "
        "readings first",
        "if state is not a sensor, leave it out with --ignore-columns state",
        "cells that are not numbers are refused: fix them or drop those readings",
    ]


@pytest.mark.parametrize("value", ["55,0488", "-0,5", "1.234,5", "2,5e-3"])
def test_a_decimal_comma_is_told_to_be_exported_as_a_point_not_read_as_one(
    tmp_path: Path, value: str
) -> None:
    """An Excel export with a European locale: ';' between fields, ',' in the numbers."""
    error = refusal(tmp_path / "eu.csv", f"timestamp;a;b\n2026-01-05 08:00:00;{value};{value}\n")
    assert (error.line, error.column) == (2, "a")
    assert error.reason.endswith(
        f"; {value!r} has a decimal comma: export the file with a decimal point (a comma is "
        "not read as one)"
    )
    assert "--ignore-columns" not in error.reason and "fix them" not in error.reason
    assert "decimal comma" not in refusal(tmp_path / "w.csv", "a;b\n1;x,y\n").reason
