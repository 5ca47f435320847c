"""Are the evaluation's normal readings the normal operation the model's threshold speaks for?

The threshold is a quantile of calibration scores: by construction only ``1 - quantile`` of
the calibration readings score above it. When most of the normal readings do (another run of
the rig, another operating range, a plant that moved), the typical normal reading is what the
threshold calls anomalous, and every comparison with them says little about the model: the
operating-range check cannot see a wider range in readings already flagged, and a capacity
warning would blame the model for copying its input when it is the normal readings that score
high.

The rule, nothing tuned: more than half the normal readings flagged, i.e. their median reading
above the threshold. A rate below that but clearly above the stated one is warned about, not
judged: the two 95% intervals apart, each counted on separate excursions (a run of flagged
readings is one event, as the manifest's interval counts them), so that how the flags cluster
widens both. Twice the stated rate in a few excursions stays a figure to read.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.threshold import effective_interval, excursions
from service.scoring.manifest import Manifest


@dataclass(frozen=True)
class NormalRateCheck:
    flagged: int
    readings: int
    stated_rate: float
    """One minus the threshold's quantile."""
    stated_interval: tuple[float, float]
    """The manifest's 95% interval on the rate the threshold implies."""
    interval: tuple[float, float] = (0.0, 1.0)
    """The 95% interval on these readings' own rate, on their excursions."""

    @property
    def share(self) -> float:
        return self.flagged / self.readings if self.readings else 0.0

    @property
    def ok(self) -> bool:
        return 2 * self.flagged <= self.readings

    @property
    def above_stated(self) -> bool:
        """Flagged clearly more often than the threshold states: the intervals apart."""
        return self.interval[0] > self.stated_interval[1]

    @property
    def holds(self) -> bool:
        return self.ok and not self.above_stated

    @property
    def stated(self) -> str:
        low, high = self.stated_interval
        return f"{self.stated_rate:.1%} (95% interval {low:.1%}-{high:.1%})"

    @property
    def message(self) -> str:
        figures = (
            f"{self.share:.1%} of the normal readings flagged ({self.flagged} of "
            f"{self.readings}); the threshold states {self.stated}"
        )
        if self.holds:
            return f"ok: {figures}."
        if self.ok:
            low, high = self.interval
            return (
                f"WARNING: {figures}; these readings' own interval ({low:.1%}-{high:.1%}) lies "
                "above it. Either they are not the operation the threshold was calibrated on "
                "(another run, operating range or season) or the threshold does not hold "
                "beyond its calibration run: expect more false alarms than stated. Check that "
                "these readings are normal operation; if they are, recalibrate on normal "
                "readings like them (train's --calibration-data)."
            )
        return (
            f"WARNING: {figures}. Most normal readings score above the threshold: either they "
            "are not the normal operation it was calibrated on (another run or rig, another "
            "operating range, or the plant moved) or its threshold does not hold on them; "
            "either way comparisons with them say little about the model. Evaluate with "
            "normal readings of the operation the model was trained for."
        )

    @property
    def capacity_advice(self) -> str:
        """What the verdicts' advice says instead, when this fails: the model cannot be
        judged against readings it takes for anomalous."""
        return (
            f"The normal readings themselves are {self.share:.1%} flagged (the threshold "
            f"states {self.stated}): faults are compared with readings the model does not "
            "take for normal, which says nothing about the model. Evaluate with normal "
            "readings of the operation it was trained for first."
        )


def normal_rate_check(manifest: Manifest, flags: np.ndarray) -> NormalRateCheck:
    """``flags``: the normal readings of normal operation, flagged at the threshold, in time
    order."""
    above = np.asarray(flags, dtype=bool)
    low, high = manifest.threshold.false_alarm_rate_ci
    flagged = int(above.sum())
    own = effective_interval(flagged, excursions(above), above.size) if above.size else (0, 1)
    return NormalRateCheck(
        flagged=flagged,
        readings=int(above.size),
        stated_rate=1.0 - manifest.threshold.quantile,
        stated_interval=(float(low), float(high)),
        interval=(float(own[0]), float(own[1])),
    )
