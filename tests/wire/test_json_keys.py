"""The repeated-key check: exact where it runs, and skipped only where no repeat can hide."""

from __future__ import annotations

import json

import pytest

from service.wire.json_keys import (
    RepeatedKey,
    check_no_repeats,
    keys_may_repeat,
    loads_refusing_repeats,
)


def test_a_repeat_is_named_wherever_it_is() -> None:
    with pytest.raises(RepeatedKey) as raised:
        loads_refusing_repeats('{"a": [{"b": 1, "c": 2, "b": 3}]}')
    assert raised.value.errors[0].field == "b"


def test_json_errors_stay_json_errors() -> None:
    with pytest.raises(json.JSONDecodeError):
        loads_refusing_repeats('{"a": ')


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        (b'{"stream_id": "a", "reading": [1, 2]}', 2),
        (b'{"a": {"b": 1, "c": 2}}', 3),
    ],
)
def test_no_more_colons_than_kept_keys_means_no_repeat(body: bytes, kept: int) -> None:
    assert not keys_may_repeat(body, kept)
    check_no_repeats(body, kept)


def test_a_repeat_always_leaves_a_colon_over() -> None:
    body = b'{"a": 1, "a": 2}'
    assert keys_may_repeat(body, len(json.loads(body)))
    with pytest.raises(RepeatedKey):
        check_no_repeats(body, 1)


def test_colons_in_strings_only_cost_the_exact_check() -> None:
    body = b'{"t": "10:00:00", "id": "a:b"}'
    assert keys_may_repeat(body, 2)
    check_no_repeats(body, 2)  # no repeat: nothing raised
