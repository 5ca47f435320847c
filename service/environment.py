"""The environment the settings come from: ``ANOMALY_*`` variables that name no setting.

pydantic-settings ignores them, so a misspelt ``ANOMALY_STORE_URL`` would leave a replica on
its own SQLite file without a word. One that resembles a setting is a likely typo: refused in
production, warned of in development. Others are said, not refused: Kubernetes gives every
pod variables named after the Services of its namespace (``ANOMALY_SERVICE_SERVICE_HOST`` for
a Service ``anomaly-service``), and other tools may share the prefix.
"""

from __future__ import annotations

import difflib
import logging
import re
from collections.abc import Mapping

from service.settings import Settings

logger = logging.getLogger(__name__)

PREFIX = str(Settings.model_config.get("env_prefix", "")).upper()
LIKENESS = 0.8
"""difflib's ratio between an unknown name and a setting's (prefix left off) from which the
name is taken for a typo of that setting."""
_SERVICE_LINK = re.compile(
    r"^\w+_(SERVICE_HOST|SERVICE_PORT(_\w+)?|PORT(_\d+_(TCP|UDP|SCTP)\w*)?)$"
)
"""The shapes of Kubernetes' and Docker links' variables for a Service or a linked container."""


class UnknownVariables(ValueError):
    """Production and ``ANOMALY_*`` variables that look like misspelt settings: refused."""


def unknown_variables(environ: Mapping[str, str]) -> dict[str, str | None]:
    """Each ``ANOMALY_*`` variable that names no setting, with the setting it most resembles
    (None: none closely), leaving out the shapes of service links that name no setting."""
    known = {name.upper(): PREFIX + name.upper() for name in Settings.model_fields}
    found: dict[str, str | None] = {}
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(PREFIX) or upper[len(PREFIX) :] in known:
            continue
        if _SERVICE_LINK.match(upper):
            continue
        close = difflib.get_close_matches(upper[len(PREFIX) :], sorted(known), 1, LIKENESS)
        found[variable] = known[close[0]] if close else None
    return found


def check_variables(settings: Settings, environ: Mapping[str, str]) -> None:
    """Refuses, in production, variables that look like misspelt settings
    (:class:`UnknownVariables`); warns of every unknown one otherwise."""
    unknown = unknown_variables(environ)
    if not unknown:
        return
    typos = {name: like for name, like in unknown.items() if like is not None}
    said = "; ".join(
        name + ("" if like is None else f" (did you mean {like}?)")
        for name, like in unknown.items()
    )
    if settings.env == "production" and typos:
        raise UnknownVariables(
            "no setting has these variables' names: " + said + " (production mode refuses to "
            "guess what a misspelt setting meant)"
        )
    logger.warning("no setting has these variables' names, so they are ignored: %s", said)
