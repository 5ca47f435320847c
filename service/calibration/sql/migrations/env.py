"""Alembic's entry point for the store's migrations.

The service runs them itself when it opens the store (``service.calibration.sql.migrate``),
handing over its connection. Run by hand (``alembic -x url=... upgrade head`` with
``script_location`` set to this folder), the URL comes from ``-x url=`` or
ANOMALY_STORE_URL.
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from service.calibration.sql.urls import engine_url

connection = context.config.attributes.get("connection")
if connection is not None:
    context.configure(connection=connection, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ["ANOMALY_STORE_URL"]
    engine = sa.create_engine(engine_url(url))
    with engine.begin() as own:
        context.configure(connection=own, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
