"""Media types of scoring bodies and replies, and the Accept negotiation of the reply."""

from __future__ import annotations

from service.errors import UnsupportedMediaType

JSON_TYPES = frozenset({"application/json"})
FLOAT32_TYPES = frozenset({"application/octet-stream"})
NPY_TYPES = frozenset({"application/x-npy", "application/npy"})
SUPPORTED_TYPES = ("application/json", "application/octet-stream", "application/x-npy")
NPZ_TYPE = "application/x-npz"  # the bulk reply as numpy arrays, on request (Accept)


def media_type(content_type: str | None) -> str:
    return (content_type or "application/json").split(";", 1)[0].strip().lower()


def unsupported(kind: str) -> UnsupportedMediaType:
    return UnsupportedMediaType(
        f"content type {kind!r} is not supported; use one of {', '.join(SUPPORTED_TYPES)}"
    )


def check_encoding(content_encoding: str | None) -> None:
    """Refuses a body sent compressed (``Content-Encoding: gzip``, ...): read as it came it
    is bytes of another format, which a float32 body would score as numbers."""
    if content_encoding is not None and content_encoding.strip().lower() not in ("", "identity"):
        raise UnsupportedMediaType(
            f"content encoding {content_encoding!r} is not supported: send the body "
            "uncompressed (Content-Encoding absent or identity)"
        )


def is_json(kind: str) -> bool:
    return kind in JSON_TYPES or kind.endswith("+json")


def is_binary(kind: str) -> bool:
    return kind in FLOAT32_TYPES or kind in NPY_TYPES


def wants_npz(accept: str | None) -> bool:
    """A binary body's reply is an ``.npz`` when the client's Accept names it (any
    parameters, any position); JSON otherwise."""
    return accept is not None and any(media_type(part) == NPZ_TYPE for part in accept.split(","))
