"""Store URLs (service/calibration/sql/urls.py) and the settings that name the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.calibration.sql.urls import engine_url, shown
from service.settings import Settings


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("sqlite:///var/feedback.sqlite3", "sqlite"),
        ("sqlite:////abs/feedback.sqlite3", "sqlite"),
        ("postgresql://u:p@db:5432/anomaly", "postgresql+psycopg"),
        ("postgres://u:p@db/anomaly", "postgresql+psycopg"),
        ("postgresql+psycopg://u@db/anomaly", "postgresql+psycopg"),
    ],
)
def test_urls_map_to_their_driver(url: str, driver: str) -> None:
    assert engine_url(url).drivername == driver


@pytest.mark.parametrize(
    "url", ["mysql://db/x", "postgresql+asyncpg://db/x", "sqlite+aiosqlite:///x"]
)
def test_other_schemes_are_refused_naming_the_supported_ones(url: str) -> None:
    with pytest.raises(ValueError, match="sqlite:///PATH or postgresql://"):
        engine_url(url)


def test_the_password_is_never_shown() -> None:
    assert "s3cret" not in shown(engine_url("postgresql://svc:s3cret@db/anomaly"))


def test_the_store_url_defaults_to_the_store_path(tmp_path: Path) -> None:
    assert Settings(store_path=tmp_path / "f.sqlite3").store_location == (
        f"sqlite:///{tmp_path / 'f.sqlite3'}"
    )
    settings = Settings(store_url="postgresql://svc:s3cret@db/anomaly")
    assert settings.store_location == "postgresql://svc:s3cret@db/anomaly"
    assert "s3cret" not in repr(settings)


def test_an_unusable_store_url_fails_at_start_up() -> None:
    with pytest.raises(ValidationError, match="not supported"):
        Settings(store_url="mysql://db/anomaly")
