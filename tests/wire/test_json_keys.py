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


def test_the_exact_check_passes_a_body_without_repeats() -> None:
    check_no_repeats(b'{"t": "10:00:00", "id": "a:b", "v": {"x": 1}}')


def check(body: bytes, accounted: int) -> bool:
    return keys_may_repeat(body, body.count(b":"), accounted)


@pytest.mark.parametrize(
    ("body", "accounted"),
    [
        (b'{"stream_id": "a", "reading": [1, 2]}', 2),
        (b'{"a": {"b": 1, "c": 2}}', 3),
        (b'{"t": "10:00:00"}', 1 + 2),  # keys, and the colons of the strings kept
    ],
)
def test_every_colon_accounted_for_means_no_repeat(body: bytes, accounted: int) -> None:
    assert not check(body, accounted)


def test_a_repeat_always_leaves_a_colon_over() -> None:
    body = b'{"a": 1, "a": 2}'
    assert check(body, len(json.loads(body)))
    with pytest.raises(RepeatedKey):
        check_no_repeats(body)


def test_colons_in_strings_not_accounted_for_only_cost_the_exact_check() -> None:
    assert check(b'{"t": "10:00:00", "id": "a:b"}', 2)


def test_an_escaped_colon_cannot_hide_a_repeat() -> None:
    """Two pairs, two literal colons; the kept pair's key and its value's decoded colon
    would account for both."""
    body = b'{"a": "\\u003a", "a": "\\u003a"}'
    assert json.loads(body) == {"a": ":"}
    assert check(body, 1 + 1)
