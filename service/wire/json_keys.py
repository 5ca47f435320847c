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


def keys_may_repeat(body: bytes | bytearray, colons: int, accounted: int) -> bool:
    """False when ``body`` (holding ``colons`` colons) cannot hold a repeated key. Every key
    is followed by a colon and the other colons are inside strings: when the keys its parse
    kept plus the colons inside strings it kept (``accounted``, counting any subset of them)
    make up every colon, no key was dropped. An escape could hide a colon (``\\u003a``), so
    a body with a backslash is always checked; unaccounted colons only cost the exact check.
    """
    return colons != accounted or body.find(b"\\") != -1


def check_no_repeats(body: bytes | bytearray) -> None:
    """Raises :class:`RepeatedKey` when ``body`` repeats a key (the exact, slower check)."""
    try:
        loads_refusing_repeats(body)
    except (ValueError, RecursionError):
        pass  # not expected of a body orjson read: its own checks then decide
