"""Loading readings: formats, and refusals that name file, line and column."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from models.data import load_readings, sliding_windows, write_readings_csv
from models.readings import DataError, Readings, default_sensor_names

DATA_DIR = Path(os.environ.get("SENSOR_DATA_DIR", Path(__file__).parents[3] / "shared" / "data"))


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_csv_with_timestamp_and_labels(tmp_path: Path) -> None:
    path = write(
        tmp_path / "plant.csv",
        "timestamp,temp,pressure,anomaly\n"
        "2026-01-01T00:00:00,1.5,10,0\n"
        "2026-01-01T00:00:01,2.5,11,1\n",
    )
    readings = load_readings(path)
    assert readings.sensors == ["temp", "pressure"]
    np.testing.assert_array_equal(readings.values, [[1.5, 10.0], [2.5, 11.0]])
    assert readings.values.dtype == np.float64
    assert readings.timestamps is not None
    assert readings.timestamps.dtype.kind == "M"
    np.testing.assert_array_equal(readings.labels["anomaly"], [0.0, 1.0])


def test_semicolon_csv_like_skab(tmp_path: Path) -> None:
    path = write(
        tmp_path / "run.csv",
        "datetime;a;b;anomaly;changepoint\n2020-03-09 10:14:33;1;2;0.0;0.0\n"
        "2020-03-09 10:14:34;3;4;1.0;1.0\n",
    )
    readings = load_readings(path)
    assert readings.sensors == ["a", "b"]
    assert set(readings.labels) == {"anomaly", "changepoint"}
    dropped = load_readings(path, drop_columns=["B"])
    assert dropped.sensors == ["a"] and dropped.ignored == ("b",)  # as the file spells it
    assert dropped.slice(0, 1).ignored == ("b",)


def test_separator_inside_quoted_header_names(tmp_path: Path) -> None:
    path = write(tmp_path / "eu.csv", '"Temp, C";"Flow, m3/h";Pressure\n1;2;3\n4;5;6\n')
    readings = load_readings(path)
    assert readings.sensors == ["Temp, C", "Flow, m3/h", "Pressure"]
    np.testing.assert_array_equal(readings.values, [[1, 2, 3], [4, 5, 6]])


def test_label_columns_are_configurable(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", "a,anomaly\n1,0\n2,1\n")
    as_sensor = load_readings(path, label_columns=())
    assert as_sensor.sensors == ["a", "anomaly"]
    assert as_sensor.labels == {}


@pytest.mark.parametrize(
    ("body", "line", "column", "words"),
    [
        ("a,b\n1,2\n3,nan\n", 3, "b", "missing value ('nan')"),
        ("a,b\n1,2\n3,4\ninf,5\n", 4, "a", "value 'inf' is infinite"),
        ("a,b\n1,2\n3,oops\n", 3, "b", "'oops' is not a number"),
        ("a,b\n1,2\n3,\n", 3, "b", "missing value (an empty cell)"),
    ],
)
def test_csv_bad_values_are_located(
    tmp_path: Path, body: str, line: int, column: str, words: str
) -> None:
    path = write(tmp_path / "bad.csv", body)
    with pytest.raises(DataError) as caught:
        load_readings(path)
    error = caught.value
    assert (error.line, error.column) == (line, column)
    message = str(error)
    assert str(path) in message and f"line {line}" in message and f"column {column}" in message
    assert words in message


def test_csv_ragged_row(tmp_path: Path) -> None:
    path = write(tmp_path / "ragged.csv", "a,b,c\n1,2,3\n4,5\n6,7,8\n")
    with pytest.raises(DataError, match=r"ragged.csv, line 3: ragged row: 2 fields .* 3"):
        load_readings(path)


def test_csv_the_csv_module_cannot_read_is_refused(tmp_path: Path) -> None:
    """A field over the csv module's 128 KiB limit raised csv.Error through train."""
    path = write(tmp_path / "long.csv", "a,b\n1,2\n3," + "4" * 200_000 + "\n")
    with pytest.raises(DataError, match=r"long.csv, line \d+: not a readable CSV \(field larger"):
        load_readings(path)


def test_csv_row_of_separators_is_refused_blank_lines_skipped(tmp_path: Path) -> None:
    blank = load_readings(write(tmp_path / "blank.csv", "a,b\n1,2\n\n3,4\n  \n\n"))
    np.testing.assert_array_equal(blank.values, [[1, 2], [3, 4]])
    with pytest.raises(DataError, match=r"empty.csv, line 3: row has only separators"):
        load_readings(write(tmp_path / "empty.csv", "a,b\n1,2\n,\n3,4\n"))
    # Below the last reading (as spreadsheets export a table) they are no reading: dropped.
    excel = load_readings(write(tmp_path / "excel.csv", "a;b;c\n1;2;3\n4;5;6\n;;\n;;\n"))
    np.testing.assert_array_equal(excel.values, [[1, 2, 3], [4, 5, 6]])
    with pytest.raises(DataError, match="no readings"):
        load_readings(write(tmp_path / "only.csv", "a;b\n;\n;\n"))


def test_csv_header_problems(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="duplicate column name 'a'"):
        load_readings(write(tmp_path / "dup.csv", "a,b,a\n1,2,3\n"))
    with pytest.raises(DataError, match="empty"):
        load_readings(write(tmp_path / "empty.csv", ""))
    with pytest.raises(DataError, match="no readings"):
        load_readings(write(tmp_path / "header.csv", "a,b\n"))
    with pytest.raises(DataError, match="no sensor columns"):
        load_readings(write(tmp_path / "labels.csv", "timestamp,anomaly\n2026-01-01,0\n"))


def test_repeated_timestamps_are_accepted(tmp_path: Path) -> None:
    """A clock coarser than the sampling, or a local-time clock change (NAB's
    ec2_request_latency_system_failure.csv repeats 2014-03-09 03:00:00 twelve times)."""
    path = write(
        tmp_path / "repeat.csv",
        "timestamp,a\n2014-03-09 02:55:00,1\n2014-03-09 03:00:00,2\n2014-03-09 03:00:00,3\n",
    )
    assert load_readings(path).values[:, 0].tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("header", "row", "said"),
    [
        ("timestamp,unix_time,ts,a", "2026-01-05T08:00:00,1767600000,2026-01-05 08:00,1", ""),
        ("Date,Time,a,ts", "2026-01-05,08:00:00,1,2", "'Date' holds dates and 'Time' times of"),
        ("Time,a,date", "08:00,1,05.01.2026", "'date' holds dates and 'Time' times of day"),
    ],
)
def test_a_second_time_column_is_refused_not_taken_as_a_sensor(
    tmp_path: Path, header: str, row: str, said: str
) -> None:
    """A clock trained on as a sensor makes the model flag every later reading."""
    path = write(tmp_path / "two.csv", f"{header}\n{row}\n")
    with pytest.raises(DataError) as caught:
        load_readings(path)
    first, second = [
        n for n in header.split(",") if n.lower() in ("timestamp", "ts", "date", "time")
    ][:2]
    assert (caught.value.line, caught.value.column) == (1, second)
    assert f"a second time column after {first!r}" in caught.value.reason
    assert caught.value.reason.endswith(f"leave it out with --ignore-columns {second}")
    assert said in caught.value.reason
    if not said:
        assert "holds dates" not in caught.value.reason
        left_out = load_readings(path, drop_columns=["unix_time", "ts"])
        assert left_out.timestamps is not None and left_out.sensors == ["a"]


def test_a_column_of_numbers_named_like_a_time_index_is_a_sensor(tmp_path: Path) -> None:
    """Ts, a supply temperature beside the time index, was refused with no way to keep it."""
    path = write(tmp_path / "hvac.csv", "timestamp,Ts,Tr\n2026-01-05T08:00:00Z,55.1,40.2\n")
    readings = load_readings(path)
    assert readings.sensors == ["Ts", "Tr"] and readings.values.tolist() == [[55.1, 40.2]]


def test_timestamps_out_of_order_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "order.csv",
        "timestamp,a,b\n2026-01-01T00:00:02,1,2\n2026-01-01T00:00:01,3,4\n",
    )
    with pytest.raises(DataError, match=r"line 3: .*time order"):
        load_readings(path)


@pytest.mark.parametrize(
    ("stamps", "line", "words"),
    [
        (["01/02/2024 10:00", "01/01/2024 10:00"], 2, "'01/02/2024 10:00' is not ISO 8601"),
        (["2024-01-02", "", "2024-01-01"], 3, "column timestamp: timestamp is empty"),
        (["1", "2", "2024-01-03"], 4, "'2024-01-03' is not a finite number"),
        (["2026-01-01T00:00:00Z", "2026-01-01T02:00:00"], 3, "lacks a time zone"),
        (["2026-01-01T00:00:00Z", "2026-01-01T00:30:00+01:00"], 3, "earlier than"),
        (["2026-01-01", "2026-13-01"], 3, "Month out of range"),
        (["1500-01-01"], 2, "outside the years 1678-2261"),
    ],
)
def test_timestamps_that_cannot_be_ordered_are_refused(
    tmp_path: Path, stamps: list[str], line: int, words: str
) -> None:
    """Not kept as text: the increasing-time check would silently not happen."""
    body = "timestamp,a\n" + "".join(f"{stamp},{i}\n" for i, stamp in enumerate(stamps))
    with pytest.raises(DataError) as caught:
        load_readings(write(tmp_path / "stamps.csv", body))
    assert caught.value.line == line
    assert words in str(caught.value)


def test_timestamps_as_numbers_or_with_zones(tmp_path: Path) -> None:
    numbers = load_readings(write(tmp_path / "n.csv", "time,a\n0.5,1\n1,2\n2e3,3\n"))
    assert numbers.timestamps is not None and numbers.timestamps.dtype == np.float64
    np.testing.assert_array_equal(numbers.timestamps, [0.5, 1.0, 2000.0])
    zoned = load_readings(
        write(tmp_path / "z.csv", "ts,a\n2026-01-01T00:00:00Z,1\n2026-01-01T01:30+01:00,2\n")
    )
    assert zoned.timestamps is not None
    np.testing.assert_array_equal(
        zoned.timestamps, np.array(["2026-01-01T00:00", "2026-01-01T00:30"], "datetime64[ns]")
    )


@pytest.mark.parametrize(
    ("name", "data", "line", "words"),
    [
        ("latin1.csv", "temp°C,b\n1,2\n".encode("latin-1"), 1, "byte 0xb0 at byte 5 of the line"),
        ("junk.csv", b"a,b\n1,2\n\xff\xfe\x81,3\n", 3, "byte 0xff at byte 1 of the line"),
        ("bom.csv", b"\xef\xbb\xbfa,b\n1,\xb0\n", 2, "(file offset 9)"),
        ("nul.csv", b"a,b\n1,2\n\x003,4\n", 3, "is a NUL"),
        ("latin1.dat", "1 2\n3 4°\n".encode("latin-1"), 2, "byte 0xb0 at byte 4 of the line"),
        ("excel.csv", "a\tb\n1\t2\n".encode("utf-16"), None, "UTF-16 byte-order mark"),
    ],
)
def test_files_not_utf8_are_refused_not_guessed(
    tmp_path: Path, name: str, data: bytes, line: int | None, words: str
) -> None:
    (tmp_path / name).write_bytes(data)
    with pytest.raises(DataError, match="UTF-8") as caught:
        load_readings(tmp_path / name)
    assert caught.value.line == line
    assert words in str(caught.value) and str(tmp_path / name) in str(caught.value)


def test_utf8_with_byte_order_mark_and_non_ascii_names(tmp_path: Path) -> None:
    (tmp_path / "excel.csv").write_bytes("\ufefftemp°C;flow\r\n1;2\r\n".encode())
    assert load_readings(tmp_path / "excel.csv").sensors == ["temp°C", "flow"]


def test_whitespace_dat_and_transpose(tmp_path: Path) -> None:
    path = write(tmp_path / "d.dat", "  1.0e+00   2.0\n 3.0 4.0\n 5.0 6.0\n")
    readings = load_readings(path)
    assert readings.sensors == ["x01", "x02"]
    np.testing.assert_array_equal(readings.values, [[1, 2], [3, 4], [5, 6]])
    transposed = load_readings(path, transpose=True)
    assert transposed.values.shape == (2, 3)
    assert transposed.sensors == ["x01", "x02", "x03"]
    np.testing.assert_array_equal(transposed.values, [[1, 3, 5], [2, 4, 6]])


def test_whitespace_dat_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"r.dat, line 2: ragged row: 1 fields where line 1 has 2"):
        load_readings(write(tmp_path / "r.dat", "1 2\n3\n"))
    with pytest.raises(DataError, match=r"n.dat, line 2, column 2: missing value \('NaN'\)"):
        load_readings(write(tmp_path / "n.dat", "1 2\n3 NaN\n"))


def test_npy(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "a.npy", array)
    readings = load_readings(tmp_path / "a.npy")
    np.testing.assert_array_equal(readings.values, array)
    assert readings.values.dtype == np.float64
    assert load_readings(tmp_path / "a.npy", transpose=True).values.shape == (3, 4)
    array[2, 1] = np.inf
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(DataError, match=r"bad.npy, column x02: row 2: value is inf"):
        load_readings(tmp_path / "bad.npy")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    with pytest.raises(DataError, match="2-D"):
        load_readings(tmp_path / "cube.npy")
    (tmp_path / "empty.npy").write_bytes(b"")
    with pytest.raises(DataError, match="empty.npy: not a readable .npy array"):
        load_readings(tmp_path / "empty.npy")
    np.save(tmp_path / "none.npy", np.zeros((0, 3)))
    with pytest.raises(DataError, match=r"none.npy: array has shape \(0, 3\): no readings"):
        load_readings(tmp_path / "none.npy")


@pytest.mark.parametrize(
    ("array", "words"),
    [
        (np.array([[1 + 2j, 2], [3, 4]]), "dtype complex128 is complex"),
        (np.array([[1, 2], [3, 4]], dtype="timedelta64[s]"), "timedelta64[s] is not real numbers"),
        (np.array([["1", "2"], ["3", "4"]]), "<U1 is not real numbers"),
        (np.array([[1, "a"], [3, 4]], dtype=object), "object holds Python objects"),
    ],
)
def test_npy_that_is_not_real_numbers_is_refused(
    tmp_path: Path, array: np.ndarray, words: str
) -> None:
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(DataError, match="a.npy: array dtype") as caught:
        load_readings(tmp_path / "a.npy")
    assert words in str(caught.value)


def test_unsupported_and_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unsupported file type '.parquet'"):
        load_readings(write(tmp_path / "x.parquet", "a"))
    with pytest.raises(DataError, match="no such file"):
        load_readings(tmp_path / "missing.csv")
    with pytest.raises(DataError, match="--transpose"):
        load_readings(write(tmp_path / "t.csv", "a,b\n1,2\n"), transpose=True)


def test_folders_and_unreadable_files_are_data_errors_naming_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(DataError, match=r"folder.csv: is a folder, not a file"):
        load_readings(tmp_path / "folder.csv")
    locked = write(tmp_path / "locked.csv", "a,b\n1,2\n")

    def denied(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)  # chmod does not stop root, who runs CI
    with pytest.raises(DataError, match=r"locked.csv: cannot be read: Permission denied$"):
        load_readings(locked)


def test_csv_round_trip_is_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    original = Readings(
        values=rng.normal(size=(5, 3)) * 1e3,
        sensors=["a", "b", "c"],
        timestamps=np.datetime64("2026-01-01T00:00:00", "s") + np.arange(5),
        source="test",
        labels={
            "anomaly": np.array([0.0, 0.0, 1.0, 1.0, 0.0]),
            "anomaly_kind": np.array(["", "", "stuck", "stuck", ""]),
        },
    )
    write_readings_csv(tmp_path / "r.csv", original)
    loaded = load_readings(tmp_path / "r.csv")
    np.testing.assert_array_equal(loaded.values, original.values)
    assert loaded.sensors == original.sensors
    np.testing.assert_array_equal(loaded.labels["anomaly"], original.labels["anomaly"])
    np.testing.assert_array_equal(loaded.labels["anomaly_kind"], original.labels["anomaly_kind"])


def test_sliding_windows() -> None:
    values = np.arange(10.0).reshape(5, 2)
    windows = sliding_windows(values, 3)
    assert windows.shape == (3, 3, 2)
    np.testing.assert_array_equal(windows[0], values[0:3])
    np.testing.assert_array_equal(windows[-1], values[2:5])
    np.testing.assert_array_equal(sliding_windows(values, 1)[:, 0, :], values)
    with pytest.raises(ValueError, match="fewer than one window"):
        sliding_windows(values, 6)


def test_default_sensor_names_sort_in_order() -> None:
    names = default_sensor_names(120)
    assert names[0] == "x001" and names == sorted(names)


@pytest.mark.skipif(
    not (DATA_DIR / "tep" / "d00.dat").is_file(), reason=f"TEP data not found under {DATA_DIR}"
)
def test_real_tep_training_run_is_transposed() -> None:
    readings = load_readings(DATA_DIR / "tep" / "d00.dat", transpose=True)
    assert readings.values.shape == (500, 52)
    assert load_readings(DATA_DIR / "tep" / "d00_te.dat").values.shape == (960, 52)


@pytest.mark.skipif(
    not (DATA_DIR / "skab" / "valve1" / "0.csv").is_file(),
    reason=f"SKAB data not found under {DATA_DIR}",
)
def test_real_skab_file_has_sensors_and_labels() -> None:
    readings = load_readings(DATA_DIR / "skab" / "valve1" / "0.csv")
    assert readings.n_sensors == 8
    assert set(readings.labels) == {"anomaly", "changepoint"}
    assert readings.timestamps is not None and readings.timestamps.dtype.kind == "M"
    assert 0 < readings.labels["anomaly"].sum() < readings.n_readings
