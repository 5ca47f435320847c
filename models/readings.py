"""What every loader in ``models/data.py`` shares: the :class:`Readings` it returns and the
:class:`DataError` it refuses a file with, naming file, line and column, and the checks behind
those refusals (UTF-8 text, numbers, finite values)."""

from __future__ import annotations

import codecs
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),  # before UTF-16 LE, whose mark it starts with
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


class DataError(Exception):
    """A data file cannot be used as sensor readings; the message names file, line and column."""

    def __init__(
        self,
        path: Path | str,
        reason: str,
        *,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = str(path)
        self.reason = reason
        self.line = line
        self.column = column
        where = self.path
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column}"
        super().__init__(f"{where}: {reason}")


@dataclass(frozen=True)
class Readings:
    """Sensor readings in time order, with what is known about where they came from."""

    values: np.ndarray
    """float64, shape (n_readings, n_sensors)."""
    sensors: list[str]
    timestamps: np.ndarray | None
    """One entry per reading, never decreasing: datetime64[ns] for ISO 8601 (in UTC when the
    file gives a zone) or float64 for numbers; None without a timestamp column."""
    source: str
    labels: dict[str, np.ndarray] = field(default_factory=dict)
    """Ground-truth columns found in the file (e.g. SKAB's ``anomaly``), one entry per reading:
    numeric columns as float64, others as str."""
    ignored: tuple[str, ...] = ()
    """Header names left out on request (``--ignore-columns``), as the file spells them."""

    def __post_init__(self) -> None:
        if self.values.ndim != 2:
            raise ValueError(f"values must be 2-D (readings, sensors), got {self.values.shape}")
        if self.values.shape[1] != len(self.sensors):
            raise ValueError(
                f"{len(self.sensors)} sensor names for {self.values.shape[1]} value columns"
            )
        n = self.values.shape[0]
        if self.timestamps is not None and len(self.timestamps) != n:
            raise ValueError(f"{len(self.timestamps)} timestamps for {n} readings")
        for name, column in self.labels.items():
            if len(column) != n:
                raise ValueError(f"label column {name!r} has {len(column)} entries for {n}")

    @property
    def n_readings(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_sensors(self) -> int:
        return int(self.values.shape[1])

    def slice(self, start: int, stop: int) -> Readings:
        """Readings ``start:stop`` (by time), labels and timestamps included."""
        return Readings(
            values=self.values[start:stop],
            sensors=list(self.sensors),
            timestamps=None if self.timestamps is None else self.timestamps[start:stop],
            source=f"{self.source}[{start}:{stop}]",
            labels={name: column[start:stop] for name, column in self.labels.items()},
            ignored=self.ignored,
        )


def default_sensor_names(n_sensors: int) -> list[str]:
    """Names for header-less files: x01, x02, ... (zero-padded so they sort in order)."""
    width = max(2, len(str(n_sensors)))
    return [f"x{i:0{width}d}" for i in range(1, n_sensors + 1)]


def read_text(path: Path) -> str:
    """The file as UTF-8 text (a byte-order mark skipped). Other encodings are refused, not
    guessed: Latin-1 would decode anything, so a wrong guess would go unnoticed."""
    data = path.read_bytes()
    for bom, encoding in _WIDE_BOMS:
        if data.startswith(bom):
            raise DataError(
                path,
                f"the file is {encoding} text (it starts with a {encoding} byte-order mark, as "
                "Excel's 'Unicode Text' does), not UTF-8: save it as UTF-8 (Excel: 'CSV UTF-8')",
            )
    skipped = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        text = data[skipped:].decode("utf-8")
    except UnicodeDecodeError as exc:
        offset = skipped + exc.start
        problem = f"cannot be decoded ({exc.reason})"
    else:
        offset = data.find(b"\x00")
        if offset < 0:
            return text
        problem = "is a NUL: binary data, or UTF-16 without a byte-order mark"
    line_start = data.rfind(b"\n", 0, offset) + 1
    raise DataError(
        path,
        f"not UTF-8 text: byte {data[offset]:#04x} at byte {offset - line_start + 1} of the line "
        f"(file offset {offset}) {problem}; save the file as UTF-8 (other encodings, such as "
        "Latin-1, are not guessed)",
        line=data.count(b"\n", 0, offset) + 1,
    )


def check_finite(
    path: Path,
    values: np.ndarray,
    columns: Sequence[str],
    lines: Sequence[int] | None,
) -> None:
    """Raise on the first NaN/Inf; ``lines`` maps rows to file lines (None: name the row)."""
    bad = ~np.isfinite(values)
    if not bad.any():
        return
    row, col = (int(i) for i in np.argwhere(bad)[0])
    value = values[row, col]
    kind = "NaN (missing value)" if math.isnan(value) else f"{value} (infinite)"
    reason = (
        f"value is {kind}; fill or drop such readings before training "
        f"({int(bad.sum())} non-finite values in total)"
    )
    if lines is None:
        raise DataError(path, f"row {row}: {reason}", column=columns[col])
    raise DataError(path, reason, line=lines[row], column=columns[col])
