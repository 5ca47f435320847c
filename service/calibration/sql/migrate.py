"""Bring a store's schema to this build's newest Alembic revision, inside one transaction.

A SQLite store written before the move to Alembic carries its own ``schema_migrations``
table (numbered migrations 1 to 3, which are revisions 0001 to 0003 here): it is stamped
at the matching revision first, so only the newer revisions run and no row is touched
twice.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

from service.calibration.store import StoreError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
LEGACY_TABLE = "schema_migrations"
# Any 64-bit number: only the store's migrations take this lock, so two replicas starting
# together run them one after the other.
MIGRATION_LOCK = 0x616E6F6D616C7931


def alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def known_revisions() -> list[str]:
    """Oldest first."""
    script = ScriptDirectory(str(MIGRATIONS_DIR))
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def head_revision() -> str:
    return known_revisions()[-1]


def current_revision(connection: sa.Connection) -> str | None:
    if not sa.inspect(connection).has_table("alembic_version"):
        return None
    value = connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
    return None if value is None else str(value)


def upgrade(connection: sa.Connection, where: str) -> None:
    """Inside the caller's transaction; :class:`StoreError` for a store from a newer build."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
    config = alembic_config(connection)
    known = known_revisions()
    current = current_revision(connection)
    if current is None and sa.inspect(connection).has_table(LEGACY_TABLE):
        applied = sorted(
            int(v)
            for v in connection.execute(sa.text(f"SELECT version FROM {LEGACY_TABLE}")).scalars()
        )
        legacy = [f"{n:04d}" for n in applied]
        unknown = [n for n, rev in zip(applied, legacy, strict=True) if rev not in known[:3]]
        if unknown:
            raise StoreError(
                f"store {where} has schema migrations {unknown} this build does not know: it "
                "was written by a newer version of the service"
            )
        if legacy:
            command.stamp(config, legacy[-1])
            current = legacy[-1]
    if current is not None and current not in known:
        raise StoreError(
            f"store {where} is at schema revision {current}, which this build does not know: "
            "it was written by a newer version of the service"
        )
    command.upgrade(config, "head")
