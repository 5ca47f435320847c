"""The log line for a threshold a person set: the store's history has it, and the log says so
too, beside the recalibrator's runs, so whoever reads it sees why scores changed."""

from __future__ import annotations

import logging

from service.calibration.records import ThresholdVersion
from service.scoring.thresholds import ThresholdSnapshot

# under the keeper's logger, where these lines were before they had a module of their own
logger = logging.getLogger("service.calibration.keeper")


def log_admin_change(version: ThresholdVersion, previous: ThresholdSnapshot) -> None:
    """A threshold a person set is in the store's history; the log says so too, beside the
    recalibrator's runs, so whoever reads it sees why scores changed."""
    logger.info(
        # the reason quoted: free text a client wrote (newlines would forge log lines)
        "threshold for %s: version %d = %.6g (%s by %s, was version %d = %.6g), reason %r",
        version.model,
        version.version,
        version.value,
        version.source,
        version.author,
        previous.version,
        previous.value,
        version.reason,
    )
