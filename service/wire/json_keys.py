"""Repeated keys in a JSON object are refused, never resolved silently.

RFC 8259 leaves an object with a repeated name to the parser: ours keep the last value, so
``{"label": "anomaly", "label": "normal"}`` would be stored as normal and two ``"s03"``
values would score whichever came last, without a word. Finding repeats needs a parser
that shows every pair (the standard library's ``object_pairs_hook``), slower than orjson;
:func:`keys_may_repeat` lets the scoring path skip it whenever the body cannot hold one.
"""

from __future__ import annotations

import json
from typing import Any

from service.errors import FieldError, InvalidRequest


class RepeatedKey(InvalidRequest):
    slug = "repeated-key"
    title = "A JSON object repeats a key"


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise RepeatedKey(
                    f"the key {key!r} appears more than once in one JSON object; send it once",
                    errors=[FieldError(key, "appears more than once in the same object")],
                )
            seen.add(key)
    return result


def loads_refusing_repeats(body: bytes | bytearray | str) -> Any:
    """``json.loads`` that raises :class:`RepeatedKey` naming a repeated key (and
    ``json.JSONDecodeError`` as usual for what is not JSON)."""
    return json.loads(body, object_pairs_hook=_refuse_repeats)


def keys_may_repeat(body: bytes | bytearray, parsed_keys: int) -> bool:
    """False when ``body`` cannot hold a repeated key: every key is followed by a colon, so
    a body with no more colons than the keys its parse kept has lost none to a repeat.
    Colons inside strings (ISO timestamps, ids) only make the answer a cautious True."""
    return body.count(b":") > parsed_keys


def check_no_repeats(body: bytes | bytearray, parsed_keys: int) -> None:
    """Raises :class:`RepeatedKey` when ``body`` repeats a key; ``parsed_keys``: how many
    keys the fast parse of ``body`` kept (every object's, or the check is merely slower)."""
    if keys_may_repeat(body, parsed_keys):
        try:
            loads_refusing_repeats(body)
        except (ValueError, RecursionError):
            # Not expected of a body orjson read: its own checks then decide.
            pass
