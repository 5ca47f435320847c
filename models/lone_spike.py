"""Does one bad reading page someone? A lone spike on one sensor, injected into normal
readings, run through the model's scores, smoothing and the service's alert rule.

A transmitter glitch is one reading; the service's debounced alert exists so that it does not
raise an alert. A model over a window of readings sees the glitch in every window that holds
it, and a long smoothing carries it further, so whether a glitch alerts depends on the model,
not only on the alert rule. Selection does not weigh this (it counts faults caught); this
check tells a user what the chosen operating point does with a glitch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.events import alerting
from models.scores import alert_rule_for, per_sensor_errors, scores_from_errors

if TYPE_CHECKING:
    from models.train import TrainResult
    from service.scoring.artifact import Artifact

SPIKE_SIZE = 8.0
"""Spike height in the sensor's training standard deviations: the glitch the service's
acceptance tests require the bundled model to flag without alerting."""
TRIALS = 20
HORIZON = 100
"""Readings after a spike in which an alert counts as the spike's, and around a trial in which
the clean run must raise no alert of its own (longer than any smoothing selection weighs
carries a reading: an EWMA of 0.1 keeps 1% of it after 44 readings)."""


@dataclass(frozen=True)
class LoneSpikeCheck:
    size: float
    trials: int
    flagged: int
    """Trials in which the spike's own reading is flagged (what the service flags)."""
    alerted: int
    """Trials after whose spike the stream goes into alert (the clean run is not in alert
    there)."""
    window: int

    @property
    def ok(self) -> bool:
        return self.trials > 0 and self.alerted == 0

    @property
    def message(self) -> str:
        if self.trials == 0:
            return (
                "not checked: the normal readings leave no stretch without an alert of their "
                "own to place a lone spike in."
            )
        what = (
            f"a lone {self.size:g}-SD spike on one sensor raised an alert in {self.alerted} of "
            f"{self.trials} trials (its own reading flagged in {self.flagged})"
        )
        if self.ok:
            return f"ok: {what}."
        held = (
            f"the model sees the spike in all {self.window} windows that hold it"
            if self.window > 1
            else "the smoothing carries the spike over several readings"
        )
        return (
            f"WARNING: {what}: {held}, so a one-reading glitch pages someone. Fewer readings per "
            "window, or a median smoothing (--smoothing median:3) over one reading, ignore it, "
            "at the price of the dynamic faults a window catches (docs/evaluation.md)."
        )

    def as_dict(self) -> dict[str, float | int | bool]:
        return {
            "size_sd": self.size,
            "trials": self.trials,
            "flagged": self.flagged,
            "alerted": self.alerted,
            "ok": self.ok,
        }


def lone_spike_check(
    model: TrainResult | Artifact,
    normal_values: np.ndarray,
    *,
    threshold: float,
    scale: np.ndarray,
    size: float = SPIKE_SIZE,
    trials: int = TRIALS,
) -> LoneSpikeCheck:
    """``trials`` spikes, one at a time, spread evenly over ``normal_values`` (readings x
    sensors, one run in time order) and over the sensors, alternating in sign; ``scale`` is
    the sensors' training standard deviations. Positions where the clean run is in alert
    within :data:`HORIZON` readings are skipped: a spike there could not start an alert."""
    values = np.asarray(normal_values, dtype=np.float64)
    n, n_sensors = values.shape
    window = _window(model)
    rule = alert_rule_for(model)
    clean = per_sensor_errors(model, values)
    busy = alerting(scores_from_errors(model, clean) / threshold, rule)
    first, last = window - 1 + HORIZON, n - window - HORIZON
    positions = np.linspace(first, last, trials if last > first else 0).round().astype(int)
    done = flagged = alerted = 0
    for k, t in enumerate(positions):
        i = t - (window - 1)  # the first scored window that holds reading t
        after = slice(i, i + window + HORIZON)
        if busy[i - HORIZON : after.stop].any():
            continue
        sensor = k * n_sensors // trials
        segment = values[t - window + 1 : t + window].copy()
        segment[window - 1, sensor] += (1 if k % 2 == 0 else -1) * size * float(scale[sensor])
        errors = clean.copy()
        errors[i : i + window] = per_sensor_errors(model, segment)
        normalised = scores_from_errors(model, errors) / threshold
        done += 1
        flagged += bool(normalised[i] > 1.0)
        alerted += bool(alerting(normalised, rule)[after].any())
    return LoneSpikeCheck(size, done, flagged, alerted, window)


def _window(model: TrainResult | Artifact) -> int:
    from models.train import TrainResult

    return model.window if isinstance(model, TrainResult) else model.manifest.window
