"""Are the evaluation's normal readings the normal operation the model's threshold speaks for?

The threshold states a false-alarm rate (one minus its quantile) and a 95% interval on it,
measured on the calibration readings. Normal readings flagged far above it (another run of
the rig, another operating range, a plant that moved) make every comparison with them say
little about the model: the operating-range check cannot see a wider range in readings
already flagged, and a capacity warning would blame the model for copying its input when it
is the normal readings that score high.

The rule, from the threshold's own statement and nothing tuned: the normal readings' share
flagged, with its 95% interval counted as the threshold's interval counts (a run of
consecutive flags is one event), lies wholly above the stated interval. Events are counted
at the calibration's own rate of events per flagged reading, which the manifest records:
normal operation flags in runs as long as the calibration's, so a run flagged from end to
end is many such events, not one. An artifact that does not record it (written before
excursions were counted) has the normal readings' own runs counted instead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.threshold import clopper_pearson, excursions
from service.scoring.manifest import Manifest


@dataclass(frozen=True)
class NormalRateCheck:
    flagged: int
    readings: int
    stated_rate: float
    """One minus the threshold's quantile."""
    stated_interval: tuple[float, float]
    """The manifest's 95% interval on the rate the threshold implies."""
    interval: tuple[float, float]
    """95% interval on the normal readings' share flagged, on the calibration's event size."""

    @property
    def share(self) -> float:
        return self.flagged / self.readings if self.readings else 0.0

    @property
    def ok(self) -> bool:
        return self.interval[0] <= self.stated_interval[1]

    @property
    def stated(self) -> str:
        low, high = self.stated_interval
        return f"{self.stated_rate:.1%} (95% interval {low:.1%}-{high:.1%})"

    @property
    def message(self) -> str:
        low, high = self.interval
        figures = (
            f"{self.share:.1%} of the normal readings flagged ({self.flagged} of "
            f"{self.readings}; 95% interval {low:.1%}-{high:.1%}); the threshold states "
            f"{self.stated}"
        )
        if self.ok:
            return f"ok: {figures}."
        return (
            f"WARNING: {figures}. The normal readings are flagged far above what the threshold "
            "states: either they are not the normal operation it was calibrated on (another "
            "run or rig, another operating range, or the plant moved) or its threshold does "
            "not hold on them; either way comparisons with them say little about the model. "
            "Evaluate with normal readings of the operation the model was trained for."
        )

    @property
    def capacity_advice(self) -> str:
        """What a capacity warning says instead of blaming the model, when this fails."""
        return (
            f"The normal readings themselves are flagged {self.share:.1%} (the threshold states "
            f"{self.stated}): anomalies are compared with readings the model does not take for "
            "normal, which says nothing about it copying its input. Evaluate with normal "
            "readings of the operation it was trained for first."
        )


def event_share(manifest: Manifest) -> float | None:
    """Calibration events per calibration reading above the threshold; None when the
    manifest does not record its excursions."""
    metrics = manifest.metrics
    excursions = metrics.get("threshold_excursions")
    observed = metrics.get("threshold_observed_false_alarm_rate")
    if not isinstance(excursions, int) or not isinstance(observed, float | int):
        return None
    exceeding = round(observed * manifest.threshold.n_calibration)
    return min(1.0, excursions / exceeding) if exceeding > 0 and excursions > 0 else 1.0


def normal_rate_check(manifest: Manifest, flags: np.ndarray) -> NormalRateCheck:
    """``flags``: the normal readings of normal operation in time order, flagged at the
    threshold."""
    above = np.asarray(flags, dtype=bool)
    flagged, readings = int(above.sum()), int(above.size)
    share = event_share(manifest)
    if share is None:
        share = excursions(above) / flagged if flagged else 1.0
    interval = clopper_pearson(flagged * share, readings * share) if readings else (0.0, 1.0)
    low, high = manifest.threshold.false_alarm_rate_ci
    return NormalRateCheck(
        flagged=flagged,
        readings=readings,
        stated_rate=1.0 - manifest.threshold.quantile,
        stated_interval=(float(low), float(high)),
        interval=interval,
    )
