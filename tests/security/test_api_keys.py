"""API key hashing, parsing and the production guard (transport-free parts)."""

from __future__ import annotations

import doctest
import hashlib
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from service import security
from service.security import InsecureConfiguration, KeyRing, build_keyring, read_key_file
from service.settings import ApiKeyConfig, Settings

STRONG = "k3y-9f8e7d6c5b4a3210fedcba9876543210"


def test_doctests() -> None:
    assert doctest.testmod(security).failed == 0


def cfg(name: str, scopes: list[str], **key: str) -> ApiKeyConfig:
    return ApiKeyConfig.model_validate({"name": name, "scopes": scopes, **key})


def test_clear_and_hashed_keys_authenticate_to_their_principal() -> None:
    other = "another-" + STRONG
    ring = KeyRing(
        [
            cfg("ops", ["feedback"], key=STRONG),
            cfg(
                "admin",
                ["admin", "feedback"],
                key_sha256=hashlib.sha256(other.encode()).hexdigest(),
            ),
        ]
    )
    ops = ring.authenticate(STRONG)
    admin = ring.authenticate(other)
    assert ops is not None and ops.name == "ops" and ops.scopes == {"feedback"}
    assert admin is not None and admin.scopes == {"admin", "feedback"}
    assert ring.authenticate(STRONG + "x") is None
    assert ring.authenticate("") is None


def test_clear_keys_are_not_kept() -> None:
    ring = KeyRing([cfg("ops", ["score"], key=STRONG)])
    assert STRONG not in repr(vars(ring)) and STRONG.encode() not in repr(vars(ring)).encode()


def test_key_config_needs_exactly_one_form() -> None:
    with pytest.raises(ValidationError):
        cfg("x", ["score"])
    with pytest.raises(ValidationError):
        cfg("x", ["score"], key=STRONG, key_sha256="a" * 64)
    with pytest.raises(ValidationError):
        cfg("x", ["root"], key=STRONG)
    with pytest.raises(ValueError, match="twice"):
        KeyRing([cfg("x", ["score"], key=STRONG), cfg("x", ["admin"], key="z" + STRONG)])


def test_key_file_is_read(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps([{"name": "ops", "scopes": ["feedback"], "key": STRONG}]))
    settings = Settings(api_keys_file=path)
    ring = build_keyring(settings)
    assert len(ring) == 1 and ring.authenticate(STRONG) is not None
    path.write_text("[{]")
    with pytest.raises(ValueError, match="not JSON"):
        read_key_file(path)


def test_a_malformed_key_entry_does_not_echo_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Start-up errors end up in logs: no part of a clear key may be in them."""
    # The key last: pydantic shortens a long input in the middle, keeping its end.
    entry = [{"name": "ops", "scopes": ["admin"], "key_sha256": "a" * 64, "key": STRONG}]
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(entry))
    with pytest.raises(ValueError, match="exactly one of key, key_sha256") as from_file:
        read_key_file(path)
    monkeypatch.setenv("ANOMALY_API_KEYS", json.dumps(entry))
    with pytest.raises(ValidationError) as from_env:
        Settings()
    for error in (from_file, from_env):
        assert STRONG[-12:] not in str(error.value)


def test_settings_read_keys_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "ANOMALY_API_KEYS", json.dumps([{"name": "ops", "scopes": ["admin"], "key": STRONG}])
    )
    ring = build_keyring(Settings())
    principal = ring.authenticate(STRONG)
    assert principal is not None and principal.name == "ops"


def test_production_refuses_no_keys_and_weak_keys() -> None:
    with pytest.raises(InsecureConfiguration, match="needs API keys"):
        build_keyring(Settings(env="production"))
    for weak in ("changeme", "short-key-123", "ab" * 20):
        with pytest.raises(InsecureConfiguration, match="weak"):
            build_keyring(Settings(env="production", api_keys=[cfg("ops", ["admin"], key=weak)]))
    default_hash = hashlib.sha256(b"secret").hexdigest()
    with pytest.raises(InsecureConfiguration, match="default"):
        build_keyring(
            Settings(env="production", api_keys=[cfg("ops", ["admin"], key_sha256=default_hash)])
        )
    ok = build_keyring(Settings(env="production", api_keys=[cfg("ops", ["admin"], key=STRONG)]))
    assert len(ok) == 1


def test_development_accepts_weak_keys_for_local_use() -> None:
    ring = build_keyring(Settings(api_keys=[cfg("dev", ["admin"], key="dev")]))
    assert ring.weak_keys and ring.authenticate("dev") is not None
