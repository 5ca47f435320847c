"""Are the evaluation's normal readings the normal operation the model's threshold speaks for?

The threshold is a quantile of calibration scores: by construction only ``1 - quantile`` of
the calibration readings score above it. When most of the normal readings do (another run of
the rig, another operating range, a plant that moved), the typical normal reading is what the
threshold calls anomalous, and every comparison with them says little about the model: the
operating-range check cannot see a wider range in readings already flagged, and a capacity
warning would blame the model for copying its input when it is the normal readings that score
high.

The rule, nothing tuned: more than half the normal readings flagged, i.e. their median reading
above the threshold. Subtler gaps (normal readings flagged at twice the stated rate) are
reported with the figures but judged by nothing here: how far a rate may move between runs
depends on how the flags cluster, which the stated interval of an older artifact does not say.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.scoring.manifest import Manifest


@dataclass(frozen=True)
class NormalRateCheck:
    flagged: int
    readings: int
    stated_rate: float
    """One minus the threshold's quantile."""
    stated_interval: tuple[float, float]
    """The manifest's 95% interval on the rate the threshold implies."""

    @property
    def share(self) -> float:
        return self.flagged / self.readings if self.readings else 0.0

    @property
    def ok(self) -> bool:
        return 2 * self.flagged <= self.readings

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
        if self.ok:
            return f"ok: {figures}."
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
    """``flags``: the normal readings of normal operation, flagged at the threshold."""
    above = np.asarray(flags, dtype=bool)
    low, high = manifest.threshold.false_alarm_rate_ci
    return NormalRateCheck(
        flagged=int(above.sum()),
        readings=int(above.size),
        stated_rate=1.0 - manifest.threshold.quantile,
        stated_interval=(float(low), float(high)),
    )
