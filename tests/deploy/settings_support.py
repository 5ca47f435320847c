"""The ``ANOMALY_*`` names a deployment file may set: one per Settings field, plus the two of
the PostgreSQL-and-Redis mode whose fields come with its store and shared-state code."""

from __future__ import annotations

from service.settings import Settings

# The HA mode's store and shared-state settings (docs/high-availability.md). Once
# Settings has the fields store_url and redis_url these are in SETTINGS_ENV already.
HA_ENV = frozenset({"ANOMALY_STORE_URL", "ANOMALY_REDIS_URL"})
SETTINGS_ENV = frozenset(f"ANOMALY_{name.upper()}" for name in Settings.model_fields)
KNOWN_ENV = SETTINGS_ENV | HA_ENV
