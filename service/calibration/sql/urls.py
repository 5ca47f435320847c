"""Store URLs: which backend a URL names, the driver it runs on, and how it is shown."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa


def engine_url(url: str) -> sa.URL:
    """The SQLAlchemy URL for a store URL: ``postgresql://`` (or ``postgres://``) runs on
    psycopg 3; ``sqlite:///relative`` and ``sqlite:////absolute`` name a file."""
    parsed = sa.make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgresql", "postgres") and driver in ("", "psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and driver in ("", "pysqlite"):
        return parsed.set(drivername="sqlite")
    raise ValueError(
        f"store URL scheme {parsed.drivername!r} is not supported: use sqlite:///PATH or "
        "postgresql://USER:PASSWORD@HOST:PORT/DATABASE (PostgreSQL runs on psycopg 3)"
    )


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def shown(url: sa.URL) -> str:
    """For logs, errors and readiness: never the password."""
    return url.render_as_string(hide_password=True)
