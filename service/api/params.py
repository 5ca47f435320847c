"""Parameters several routers share, with their rules in the OpenAPI document: model names
(the artifact folder rule) and date-times (RFC 3339, with a zone)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query
from pydantic import AwareDatetime, BeforeValidator, WithJsonSchema

from service.scoring.manifest import NAME_MAX_LENGTH, NAME_PATTERN

MAX_CLIENT_ID = 2**53 - 1
"""Ids, versions and cursors a client sends: JSON's exact integers, so every client (and the
OpenAPI document's ``maximum``) reads the bound exactly; well below SQLite's limit."""

MODEL_NAME_RULE = f"A model name: {NAME_PATTERN}, at most {NAME_MAX_LENGTH} characters."

ModelPath = Annotated[
    str, Path(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH, description=MODEL_NAME_RULE)
]
"""A model name in the path; one no artifact could have is a 422, not a 404."""

ModelQuery = Annotated[
    str | None,
    Query(
        pattern=NAME_PATTERN,
        max_length=NAME_MAX_LENGTH,
        description="Model name; default: the default model.",
    ),
]

_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def _rfc3339(value: Any) -> Any:
    """pydantic also reads numbers and numeric strings ("0.5") as Unix seconds, and dates
    without a time; the schema says date-time, so only that is accepted."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or _RFC3339.fullmatch(value) is None:
        raise ValueError(
            "expected an RFC 3339 date-time with a time zone, e.g. 2026-01-05T10:00:00Z"
        )
    return value


DateTime = Annotated[AwareDatetime, BeforeValidator(_rfc3339)]
"""An aware date-time written as RFC 3339 (the OpenAPI ``date-time`` format), nothing else."""


def _seconds_or_rfc3339(value: Any) -> Any:
    return (
        value if isinstance(value, int | float) and not isinstance(value, bool) else _rfc3339(value)
    )


SecondsOrDateTime = Annotated[
    AwareDatetime,
    BeforeValidator(_seconds_or_rfc3339),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "format": "date-time"},
                {"type": "number", "description": "Unix seconds"},
            ]
        }
    ),
]
"""A reading time in a JSON body: Unix seconds (as the scoring endpoint takes them) or an
RFC 3339 date-time; never a numeric string."""
