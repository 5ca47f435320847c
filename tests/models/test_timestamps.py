"""A timestamp column on its own, without a file: what it accepts and where it refuses."""

from __future__ import annotations

import doctest

import numpy as np
import pytest

from models import timestamps
from models.timestamps import TimestampError, parse_timestamps


def test_doctests() -> None:
    assert doctest.testmod(timestamps).failed == 0


def test_zoned_times_are_converted_to_utc_and_numbers_kept() -> None:
    stamps = parse_timestamps(["2026-01-31T08:00:00+01:00", "2026-01-31T07:30Z"], [2, 3], "ts")
    assert (
        stamps.tolist()
        == np.array(["2026-01-31T07:00", "2026-01-31T07:30"], dtype="datetime64[ns]").tolist()
    )
    assert parse_timestamps(["0", "1.5", "1.5"], [2, 3, 4], "ts").tolist() == [0.0, 1.5, 1.5]


@pytest.mark.parametrize(
    ("texts", "line", "column", "reason"),
    [
        (["1", ""], 3, "ts", "timestamp is empty"),
        (["1", "2026-01-31"], 3, "ts", "is not a finite number"),
        (["2026-01-31", "01/02/2026"], 3, "ts", "is not ISO 8601 or a number"),
        (["2026-01-31", "2026-01-31T01:00Z"], 3, "ts", "gives a time zone"),
        (["2", "1"], 3, None, "earlier than the previous"),
    ],
)
def test_refusals_name_the_line_and_column(
    texts: list[str], line: int, column: str | None, reason: str
) -> None:
    with pytest.raises(TimestampError) as caught:
        parse_timestamps(texts, [2, 3], "ts")
    assert reason in caught.value.reason
    assert (caught.value.line, caught.value.column) == (line, column)


def test_local_times_going_back_at_the_clock_change_are_told_to_give_the_offset() -> None:
    """Zone-less local times repeat 02:00-03:00 when summer time ends: still refused (the
    readings of that hour cannot be put in order), with what would make them usable."""
    local = ["2025-10-26 02:59:50", "2025-10-26 02:00:00"]
    with pytest.raises(TimestampError) as caught:
        parse_timestamps(local, [1081, 1082], "timestamp")
    assert caught.value.line == 1082
    assert caught.value.reason.endswith(
        "; these times give no UTC offset: if the clock went back an hour (summer to winter "
        "time), write them with their offset (2025-10-26T02:00:00+01:00) or in UTC"
    )
    offsets = ["2025-10-26T02:59:50+02:00", "2025-10-26T02:00:00+01:00"]
    assert np.diff(parse_timestamps(offsets, [2, 3], "t"))[0] == np.timedelta64(10, "s")
    for stamps in (["2", "1"], ["2025-10-26T03:00Z", "2025-10-26T02:00Z"]):
        with pytest.raises(TimestampError) as caught:
            parse_timestamps(stamps, [2, 3], "t")
        assert "offset" not in caught.value.reason  # numbers, or times that give one
