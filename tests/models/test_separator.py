"""Finding a CSV file's separator from the header and the first readings together."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest

from models import separator
from models.data import load_readings
from models.readings import DataError
from models.separator import detect_separator


def test_doctests() -> None:
    assert doctest.testmod(separator).failed == 0


def european(path: Path, values: list[str]) -> Path:
    """A ';' file whose names hold a comma each, as many as the header's semicolons."""
    header = "timestamp;Temp 0, °C;Temp 1, °C"
    rows = [f"2026-01-05 08:00:0{i};{v};{v}" for i, v in enumerate(values)]
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def test_names_with_commas_in_a_semicolon_file(tmp_path: Path) -> None:
    """Counted on the header alone, ',' tied with ';' and won: "ragged row: 1 fields"."""
    readings = load_readings(european(tmp_path / "point.csv", ["55.0488", "54.9"]))
    assert readings.sensors == ["Temp 0, °C", "Temp 1, °C"]
    np.testing.assert_array_equal(readings.values, [[55.0488, 55.0488], [54.9, 54.9]])
    # With decimal commas every row splits on ',' as the header does, into as many fields:
    # the tie goes to ';', and the refusal is about the numbers, at the right column.
    with pytest.raises(DataError) as caught:
        load_readings(european(tmp_path / "comma.csv", ["55,0488", "54,9"]))
    assert (caught.value.line, caught.value.column) == (2, "Temp 0, °C")
    assert "'55,0488' has a decimal comma" in caught.value.reason
    assert "columns 'Temp 0, °C' (2), 'Temp 1, °C' (2)" in caught.value.reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b\n1,5;2,5\n", ";"),  # decimal commas: ',' splits the rows but not the header
        ("a\tb;c\n1\t2;3\n", "\t"),  # one tab and one ';' a line: the tie goes to the tab
        ("a;b,c;d\n1;2,3;4\n", ";"),  # ';' gives 3 fields, ',' 2
        ('"Temp, C";"Flow, m3/h";P\n1;2;3\n', ";"),
        ("a,b\n\n1,2\n", ","),  # blank lines are passed over
        # No comma-free column: ',' splits everything alike, and wider; ';' still wins.
        ("Temp 0, °C;Temp 1, °C\n55,00;54,01\n", ";"),
        ("a,b;c,d\n1,2,3\n", ","),  # ";" splits the lines unlike: not a separator
        ("a,b,c\n1,2,3\n4,5\n", ","),  # a ragged row: the header's most, refused later
    ],
)
def test_the_separator_splits_header_and_readings_alike(text: str, expected: str) -> None:
    assert detect_separator(Path("f.csv"), text) == expected


def test_a_ragged_row_names_the_separator(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("a;b;c\n1;2;3\n4;5;6\n" + "7;8;9\n" * 30 + "1;2\n")
    with pytest.raises(DataError) as caught:
        load_readings(path)
    assert caught.value.line == 34
    assert caught.value.reason == "ragged row: 2 fields where the header has 3 (separated by ';')"
    with pytest.raises(DataError, match="header has a single column"):
        detect_separator(path, "value\n1\n2\n")


def test_a_separator_ending_every_line_is_no_column(tmp_path: Path) -> None:
    """Excel's "a;b;" gave "header field 3 is empty"."""
    path = tmp_path / "excel.csv"
    path.write_bytes(b"timestamp;a;b;\r\n2026-01-05 08:00:00;1.5;2;\r\n2026-01-05 08:00:10;3;4\r\n")
    readings = load_readings(path)
    assert readings.sensors == ["a", "b"]
    np.testing.assert_array_equal(readings.values, [[1.5, 2.0], [3.0, 4.0]])
    path.write_text("a;b;\n1;2;\n3;4;5\n")
    with pytest.raises(DataError) as caught:
        load_readings(path)
    assert caught.value.line == 3
    assert caught.value.reason == (
        "the header ends in a ';' (its field 3 is empty) but this row has a value there, '5': "
        "name that column in the header"
    )
    with pytest.raises(DataError, match="header field 2 is empty"):  # not at the end: refused
        load_readings(write_text(tmp_path / "gap.csv", "a;;b\n1;2;3\n"))


def write_text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path
