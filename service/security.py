"""API keys with scopes: who may score, give feedback or administer thresholds.

Keys come from settings (``ANOMALY_API_KEYS``) or a secrets file (``ANOMALY_API_KEYS_FILE``),
each either in clear (hashed at load and dropped) or already as its SHA-256. Only hashes are
held in memory. SHA-256 without salt or stretching is sound here because keys are long
random tokens, not passwords; a presented key is hashed and compared with every stored hash
in constant time, so neither timing nor early exit tells a caller how close it came.

A client sends its key as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
Missing or unknown key → 401 with ``WWW-Authenticate``; known key without the scope → 403.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pydantic import ConfigDict, TypeAdapter, ValidationError
from starlette.requests import Request

from service.errors import ServiceError, validation_problems
from service.settings import ApiKeyConfig, Scope, Settings

logger = logging.getLogger(__name__)

SCOPES: tuple[Scope, ...] = ("score", "feedback", "admin")
MIN_KEY_LENGTH = 32
MIN_DISTINCT_CHARACTERS = 10
# Keys that appear in examples and tutorials: refused in production even if long enough.
KNOWN_DEFAULT_KEYS = frozenset(
    {
        "changeme",
        "change-me",
        "secret",
        "password",
        "admin",
        "test",
        "dev",
        "development",
        "apikey",
        "api-key",
        "your-api-key",
        "your-api-key-here",
        "replace-me",
        "default",
    }
)
_KNOWN_DEFAULT_HASHES = frozenset(
    hashlib.sha256(k.encode()).hexdigest() for k in KNOWN_DEFAULT_KEYS
)


class Unauthenticated(ServiceError):
    status_code = 401
    slug = "unauthenticated"
    title = "Missing or unknown API key"
    headers: ClassVar[dict[str, str]] = {"WWW-Authenticate": 'Bearer realm="anomaly-service"'}


class Forbidden(ServiceError):
    status_code = 403
    slug = "forbidden"
    title = "API key lacks the required scope"


class KeyConfigurationError(ValueError):
    """The keys cannot be read (a key file missing or malformed, a name given twice): the
    service refuses to start."""


class InsecureConfiguration(KeyConfigurationError):
    """Production settings with no key or a weak one: the service refuses to start."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_weakness(key: str) -> str | None:
    """Why a clear-text key is too weak for production, or None.

    >>> key_weakness("changeme")
    'is a well-known default'
    >>> key_weakness("a" * 40)
    'has fewer than 10 distinct characters'
    >>> key_weakness("k3y-9f8e7d6c5b4a3210fedcba9876543210") is None
    True
    """
    if key.strip().lower() in KNOWN_DEFAULT_KEYS:
        return "is a well-known default"
    if len(key) < MIN_KEY_LENGTH:
        return f"is shorter than {MIN_KEY_LENGTH} characters"
    if len(set(key)) < MIN_DISTINCT_CHARACTERS:
        return f"has fewer than {MIN_DISTINCT_CHARACTERS} distinct characters"
    return None


@dataclass(frozen=True, slots=True)
class Principal:
    """Who made a request: the key's name is recorded as the author of labels and versions."""

    name: str
    scopes: frozenset[Scope]


@dataclass(frozen=True, slots=True)
class _StoredKey:
    principal: Principal
    digest: bytes


class KeyRing:
    """The configured keys, hashed; ``authenticate`` is constant-time over the whole ring."""

    def __init__(self, keys: Sequence[ApiKeyConfig]) -> None:
        self._weak: list[str] = []
        stored: list[_StoredKey] = []
        names: set[str] = set()
        for config in keys:
            if config.name in names:
                raise KeyConfigurationError(f"API key name {config.name!r} is used twice")
            names.add(config.name)
            if config.key is not None:
                clear = config.key.get_secret_value()
                weakness = key_weakness(clear)
                if weakness:
                    self._weak.append(f"{config.name}: key {weakness}")
                digest = hash_key(clear)
            else:
                assert config.key_sha256 is not None  # ApiKeyConfig guarantees one of the two
                digest = config.key_sha256.lower()
                if digest in _KNOWN_DEFAULT_HASHES:
                    self._weak.append(f"{config.name}: key is a well-known default")
            stored.append(
                _StoredKey(
                    principal=Principal(name=config.name, scopes=frozenset(config.scopes)),
                    digest=bytes.fromhex(digest),
                )
            )
        self._keys = tuple(stored)

    def __len__(self) -> int:
        return len(self._keys)

    @property
    def weak_keys(self) -> list[str]:
        return list(self._weak)

    def authenticate(self, presented: str) -> Principal | None:
        digest = hashlib.sha256(presented.encode()).digest()
        match: Principal | None = None
        for key in self._keys:
            if hmac.compare_digest(digest, key.digest):
                match = key.principal
        return match


def read_key_file(path: Path) -> list[ApiKeyConfig]:
    """A JSON list of ``{"name", "scopes", "key" | "key_sha256"}`` objects."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise KeyConfigurationError(
            f"API key file {path} is unreadable or not JSON: {exc}"
        ) from exc
    try:
        return TypeAdapter(
            list[ApiKeyConfig], config=ConfigDict(hide_input_in_errors=True)
        ).validate_python(raw)
    except ValidationError as exc:
        raise KeyConfigurationError(
            f"API key file {path} does not match the schema: "
            + validation_problems(exc, whole="the file")
        ) from exc


NO_KEYS_TO_CHECK = (
    "this service has no API keys, so the key sent cannot be checked: send the request "
    "without one, or start the service with ANOMALY_API_KEYS or ANOMALY_API_KEYS_FILE"
)
NO_KEYS_CONFIGURED = (
    "this endpoint needs an API key, and this service has none: start it with "
    "ANOMALY_API_KEYS or ANOMALY_API_KEYS_FILE (docs/usage.md, 'Keys for trying it out')"
)


def build_keyring(settings: Settings) -> KeyRing:
    """Keys from settings and the secrets file; in production, refuse none or weak ones."""
    configs: list[ApiKeyConfig] = list(settings.api_keys)
    if settings.api_keys_file is not None:
        configs.extend(read_key_file(settings.api_keys_file))
    ring = KeyRing(configs)
    if settings.env == "production":
        if len(ring) == 0:
            raise InsecureConfiguration(
                "production mode needs API keys (ANOMALY_API_KEYS or ANOMALY_API_KEYS_FILE): "
                "feedback and admin endpoints would be unusable, and there is no default key"
            )
        if ring.weak_keys:
            raise InsecureConfiguration(
                "production mode refuses weak API keys: " + "; ".join(ring.weak_keys)
            )
    if len(ring) == 0:
        logger.warning("no API keys configured: feedback and admin answer 401 to every request")
    return ring


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    api_key = request.headers.get("x-api-key")
    return api_key.strip() if api_key and api_key.strip() else None


def authenticate(keyring: KeyRing, key: str | None, *, optional: bool = False) -> Principal:
    """The key's principal; Unauthenticated (401) when it is missing or unknown.
    ``optional``: the endpoint takes requests without a key (scoring in development)."""
    if len(keyring) == 0:  # development mode without keys: no key can be right
        raise Unauthenticated(NO_KEYS_TO_CHECK if optional else NO_KEYS_CONFIGURED)
    if key is None:
        raise Unauthenticated(
            "this endpoint needs an API key: send 'Authorization: Bearer <key>' "
            "or 'X-API-Key: <key>'"
        )
    principal = keyring.authenticate(key)
    if principal is None:
        raise Unauthenticated("the API key is not recognised")
    return principal


class require_scope:  # noqa: N801 - used like a function: Depends(require_scope("admin"))
    """FastAPI dependency: the request's key must carry one of ``scopes``.

    ``optional_unless`` names a settings flag; when that flag is off, anonymous requests
    pass (scoring needs a key only when the operator asks for it), but a presented key is
    still checked so a typo never silently runs as anonymous.
    """

    ANONYMOUS: ClassVar[Principal] = Principal(name="anonymous", scopes=frozenset())

    def __init__(self, *scopes: Scope, optional_unless: str | None = None) -> None:
        unknown = set(scopes) - set(SCOPES)
        if not scopes or unknown:
            raise ValueError(f"scopes must be a non-empty subset of {SCOPES}, got {scopes}")
        self.scopes: frozenset[Scope] = frozenset(scopes)
        self.optional_unless = optional_unless

    def required(self, settings: Settings) -> bool:
        return self.optional_unless is None or bool(getattr(settings, self.optional_unless))

    async def __call__(self, request: Request) -> Principal:
        keyring: KeyRing = request.app.state.keyring
        settings: Settings = request.app.state.settings
        key = presented_key(request)
        if key is None and not self.required(settings):
            return self.ANONYMOUS
        principal = authenticate(keyring, key, optional=not self.required(settings))
        if not principal.scopes & self.scopes:
            needed = " or ".join(sorted(self.scopes))
            raise Forbidden(f"API key {principal.name!r} lacks the {needed!r} scope")
        return principal
