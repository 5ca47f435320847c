"""Reading sensor data from CSV, whitespace ``.dat`` and ``.npy`` files.

Every loader returns :class:`models.readings.Readings` in time order (rows = readings,
columns = sensors) and refuses anything a model could silently learn garbage from: NaN, Inf,
non-numeric cells and ragged rows, each reported with the file, the line and the column
(``models/readings.py`` holds the checks all loaders share).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from models.cells import parse_numeric
from models.ignored_columns import ignore_hint
from models.readings import (
    DataError,
    Readings,
    check_finite,
    default_sensor_names,
    read_text,
)
from models.separator import detect_separator, separator_name
from models.timestamps import (
    DATE,
    TIME_OF_DAY,
    TIMESTAMP_COLUMNS,
    TimestampError,
    parse_timestamps,
)

LABEL_COLUMNS = ("anomaly", "changepoint", "label", "anomaly_kind", "anomaly_sensor")
"""Header names (case-insensitive) recognised as ground truth rather than a sensor.

SKAB files carry ``anomaly`` and ``changepoint``; files written by ``python -m models
generate --anomalies`` carry ``anomaly``, ``anomaly_kind`` and ``anomaly_sensor``.
"""


def load_readings(
    path: Path | str,
    *,
    transpose: bool = False,
    label_columns: Iterable[str] = LABEL_COLUMNS,
    drop_columns: Iterable[str] = (),
) -> Readings:
    """Load readings by file extension: ``.csv`` (header row), ``.dat``/``.txt`` (whitespace,
    no header) or ``.npy`` (2-D numeric array).

    ``transpose`` is for files stored sensors x readings (TEP's ``d00.dat`` is 52 x 500).
    CSV columns named in ``label_columns`` go to :attr:`Readings.labels`; ``drop_columns``
    are ignored altogether. Both match header names case-insensitively.
    """
    path = Path(path)
    # A file the process may not read is a DataError naming it like any other bad input,
    # not an OSError traceback from inside a loader.
    try:
        return _load_by_suffix(path, transpose, label_columns, drop_columns)
    except OSError as exc:
        raise DataError(path, f"cannot be read: {exc.strerror or exc}") from None


def _load_by_suffix(
    path: Path, transpose: bool, label_columns: Iterable[str], drop_columns: Iterable[str]
) -> Readings:
    if path.is_dir():
        raise DataError(path, "is a folder, not a file")
    if not path.is_file():
        raise DataError(path, "no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        if transpose:
            raise DataError(path, "--transpose applies to .dat and .npy files, not CSV")
        return _load_csv(path, label_columns=label_columns, drop_columns=drop_columns)
    if suffix in {".dat", ".txt"}:
        return _load_whitespace(path, transpose=transpose)
    if suffix == ".npy":
        return _load_npy(path, transpose=transpose)
    raise DataError(path, f"unsupported file type {suffix!r}: use .csv, .dat, .txt or .npy")


def sliding_windows(values: np.ndarray, window: int) -> np.ndarray:
    """Every run of ``window`` consecutive readings, shaped (n - window + 1, window, n_sensors).

    A read-only view, not a copy: a long file with a wide window would not fit in memory.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1, got {window}")
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (readings, sensors), got {values.shape}")
    if values.shape[0] < window:
        raise ValueError(f"{values.shape[0]} readings are fewer than one window of {window}")
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)
    return view.transpose(0, 2, 1)


def _load_csv(path: Path, *, label_columns: Iterable[str], drop_columns: Iterable[str]) -> Readings:
    text = read_text(path)
    with io.StringIO(text, newline="") as handle:
        first_line = handle.readline()
        if not first_line.strip():
            raise DataError(path, "file is empty (expected a header row of sensor names)")
        delimiter = detect_separator(path, text)
        handle.seek(0)
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = [name.strip() for name in next(reader)]
            # Blank lines are skipped; a line of separators (",,") is a reading with every
            # value missing and is refused below.
            rows = [
                (reader.line_num, row) for row in reader if len(row) > 1 or "".join(row).strip()
            ]
        except csv.Error as exc:  # a field over the csv module's limit, a stray NUL
            raise DataError(path, f"not a readable CSV ({exc})", line=reader.line_num) from None

    if len(header) > 1 and not header[-1]:
        header, rows = _without_trailing_separator(path, header, rows, delimiter)
    _check_header(path, header)
    labels_wanted = {name.lower() for name in label_columns}
    dropped = {name.lower() for name in drop_columns}
    timestamp_index: int | None = None
    sensor_indices: list[int] = []
    label_indices: list[int] = []
    ignored: list[str] = []
    second_times: list[int] = []  # named like the time index after it: times, or a sensor
    for index, name in enumerate(header):
        lowered = name.lower()
        if lowered in dropped:
            ignored.append(name)
            continue
        if lowered in labels_wanted:
            label_indices.append(index)
        elif lowered in TIMESTAMP_COLUMNS and timestamp_index is not None:
            second_times.append(index)
            sensor_indices.append(index)
        elif lowered in TIMESTAMP_COLUMNS:
            timestamp_index = index
        else:
            sensor_indices.append(index)
    if not sensor_indices:
        raise DataError(path, "no sensor columns (only timestamp, label or dropped columns)")
    while rows and not any(cell.strip() for cell in rows[-1][1]):
        rows.pop()  # separator-only lines below the table, as spreadsheets export them
    if not rows:
        raise DataError(path, "header only, no readings")
    for line, row in rows:
        if not any(cell.strip() for cell in row):
            raise DataError(
                path,
                "row has only separators, no values (a missing reading): fill or delete it",
                line=line,
            )
        if len(row) != len(header):
            raise DataError(
                path,
                f"ragged row: {len(row)} fields where the header has {len(header)} "
                f"(separated by {separator_name(delimiter)})",
                line=line,
            )

    for index in second_times:
        # Numbers are a sensor's (a supply temperature Ts; a clock in seconds is warned of as
        # one), anything else a second time index.
        assert timestamp_index is not None
        stamps = [rows[0][1][timestamp_index], rows[0][1][index]]
        if not _is_number(stamps[1]):
            reason = _second_time_column(header[timestamp_index], header[index], stamps)
            raise DataError(path, reason, line=1, column=header[index])
    sensors = [header[i] for i in sensor_indices]
    cells = [[row[i] for i in sensor_indices] for _, row in rows]
    values = parse_numeric(path, cells, sensors, [line for line, _ in rows], named=True)
    timestamps = None
    if timestamp_index is not None:
        try:
            timestamps = parse_timestamps(
                [row[timestamp_index].strip() for _, row in rows],
                [line for line, _ in rows],
                header[timestamp_index],
            )
        except TimestampError as exc:
            raise DataError(path, exc.reason, line=exc.line, column=exc.column) from None
    labels = {header[i]: _parse_label([row[i].strip() for _, row in rows]) for i in label_indices}
    return Readings(
        values=values,
        sensors=sensors,
        timestamps=timestamps,
        source=str(path),
        labels=labels,
        ignored=tuple(ignored),
    )


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _second_time_column(first: str, name: str, cells: Sequence[str]) -> str:
    """Why a second column with a time-index name is refused, and what to do: it would
    otherwise be trained on as a sensor (a clock, which makes every later reading look
    anomalous), or it is the time of day beside a date column."""
    reason = f"a second time column after {first!r} (a file has one time index): "
    stripped = [cell.strip() for cell in cells]
    for date, time in ((0, 1), (1, 0)):
        if DATE.fullmatch(stripped[date]) and TIME_OF_DAY.fullmatch(stripped[time]):
            reason += (
                f"{(first, name)[date]!r} holds dates and {(first, name)[time]!r} times of day: "
                "join them into one column named timestamp (2026-01-31 08:00:00); or "
            )
    return reason + f"leave it out with {ignore_hint([name])}"


def _without_trailing_separator(
    path: Path, header: list[str], rows: list[tuple[int, list[str]]], delimiter: str
) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and rows without the empty last field a separator at the end of every line
    leaves (Excel writes ``a;b;``); a value in that field has no name, and is refused."""
    for line, row in rows:
        if len(row) == len(header) and row[-1].strip():
            raise DataError(
                path,
                f"the header ends in a {separator_name(delimiter)} (its field {len(header)} "
                f"is empty) but this row has a value there, {row[-1].strip()!r}: name that "
                "column in the header",
                line=line,
            )
    trimmed = [(line, row[:-1] if len(row) == len(header) else row) for line, row in rows]
    return header[:-1], trimmed


def _check_header(path: Path, header: Sequence[str]) -> None:
    seen: set[str] = set()
    for position, name in enumerate(header, start=1):
        if not name:
            raise DataError(path, f"header field {position} is empty", line=1)
        if name in seen:
            raise DataError(path, f"duplicate column name {name!r} in the header", line=1)
        seen.add(name)


def _parse_label(texts: list[str]) -> np.ndarray:
    """Numeric (float64, empty cells NaN) when every non-empty cell is a number, else str."""
    if not any(texts):
        return np.array(texts, dtype=str)
    try:
        return np.array([float(text) if text else math.nan for text in texts], dtype=np.float64)
    except ValueError:
        return np.array(texts, dtype=str)


def _load_whitespace(path: Path, *, transpose: bool) -> Readings:
    lines: list[int] = []
    cells: list[list[str]] = []
    with io.StringIO(read_text(path), newline=None) as handle:
        for number, text in enumerate(handle, start=1):
            fields = text.split()
            if not fields:
                continue
            if cells and len(fields) != len(cells[0]):
                raise DataError(
                    path,
                    f"ragged row: {len(fields)} fields where line {lines[0]} has {len(cells[0])}",
                    line=number,
                )
            lines.append(number)
            cells.append(fields)
    if not cells:
        raise DataError(path, "file is empty")
    file_columns = [f"{i}" for i in range(1, len(cells[0]) + 1)]
    values = parse_numeric(path, cells, file_columns, lines)
    if transpose:
        values = np.ascontiguousarray(values.T)
    return Readings(
        values=values,
        sensors=default_sensor_names(values.shape[1]),
        timestamps=None,
        source=str(path) + (" (transposed)" if transpose else ""),
    )


def _header_dtype(path: Path) -> np.dtype | None:
    """The dtype a ``.npy`` header declares, or None where the header is unreadable (the
    load that follows says why)."""
    try:
        with path.open("rb") as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                return np.lib.format.read_array_header_1_0(handle)[2]
            return np.lib.format.read_array_header_2_0(handle)[2]
    except (ValueError, OSError, EOFError, TypeError):
        return None


def _load_npy(path: Path, *, transpose: bool) -> Readings:
    dtype = _header_dtype(path)
    if dtype is not None and dtype.hasobject:
        # numpy's own refusal advises allow_pickle, which this command has no way to pass
        # and which would run code stored in the file.
        raise DataError(
            path,
            f"array dtype {dtype} holds Python objects, not numbers, and is not unpickled; "
            "save it as numbers (e.g. np.save(path, array.astype(float)))",
        )
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:  # EOFError: an empty file
        raise DataError(path, f"not a readable .npy array: {exc}") from exc
    if array.ndim != 2:
        raise DataError(path, f"array has shape {array.shape}; expected 2-D (readings, sensors)")
    if array.size == 0:
        raise DataError(path, f"array has shape {array.shape}: no readings or no sensors")
    # Kinds, not np.number: that admits complex (imaginary part dropped with only a warning)
    # and timedelta64 (a duration's unit silently lost).
    if array.dtype.kind == "c":
        raise DataError(
            path,
            f"array dtype {array.dtype} is complex: readings must be real (the imaginary part "
            "would be dropped); save the real part or the magnitude",
        )
    if array.dtype.kind not in "biuf":
        raise DataError(
            path, f"array dtype {array.dtype} is not real numbers (bool, integer or float)"
        )
    values = np.asarray(array, dtype=np.float64)
    if transpose:
        values = np.ascontiguousarray(values.T)
    sensors = default_sensor_names(values.shape[1])
    check_finite(path, values, sensors, None)  # a .npy file has no lines: name the row
    return Readings(
        values=values,
        sensors=sensors,
        timestamps=None,
        source=str(path) + (" (transposed)" if transpose else ""),
    )


def write_readings_csv(path: Path | str, readings: Readings) -> None:
    """Write readings (with timestamps and label columns) in the format :func:`load_readings`
    reads back exactly (values are written with full float64 precision)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header: list[str] = []
    if readings.timestamps is not None:
        header.append("timestamp")
    header += readings.sensors
    header += list(readings.labels)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(readings.n_readings):
            row: list[str] = []
            if readings.timestamps is not None:
                row.append(str(readings.timestamps[i]))
            row += [repr(float(v)) for v in readings.values[i]]
            for column in readings.labels.values():
                row.append(_label_text(column[i]))
            writer.writerow(row)


def _label_text(value: object) -> str:
    if isinstance(value, float | np.floating):
        if math.isnan(value):
            return ""
        if float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    return str(value)
