"""Does one bad reading page someone? A lone spike on one sensor, injected into normal
readings, run through the model's scores, smoothing and the service's alert rule.

A transmitter glitch is one reading; the service's debounced alert exists so that it does not
raise an alert. A model over a window of readings sees the glitch in every window that holds
it, and a long smoothing carries it further, so whether a glitch alerts depends on the model,
not only on the alert rule. Selection does not weigh this (it counts faults caught); this
check tells a user what the chosen operating point does with a glitch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from models.events import AlertRule, alerting
from models.scores import (
    alert_rule_for,
    declared_smoothing,
    model_window,
    per_sensor_errors,
    scores_from_errors,
    varying_scales,
)

if TYPE_CHECKING:
    from models.train import TrainResult
    from service.scoring.artifact import Artifact

SPIKE_SIZE = 8.0
"""Spike height in the sensor's training standard deviations: the glitch the service's
acceptance tests require the bundled model to flag without alerting."""
TRIALS = 20
MIN_HORIZON = 100
"""Fewest scored readings after the last window holding a spike in which an alert counts as
the spike's, and around a trial in which the clean run must not be in alert; a smoothing that
carries a reading further lengthens it (:func:`horizon`)."""
CARRIED = 0.01
"""An EWMA carries a reading until its weight falls below this share."""
ADVICE = (
    "a one-reading model with a median smoothing (--window 1 --smoothing median:3) ignores a "
    "glitch, at the price of the dynamic faults a window catches (docs/evaluation.md)"
)


@dataclass(frozen=True)
class LoneSpikeCheck:
    size: float
    """Spike height, in the sensor's training standard deviations."""
    window: int
    """The model's readings per input."""
    requested: int
    """Spikes asked for, one per trial."""
    trials: int
    """Spikes placed: distinct positions where the clean run is not in alert nearby."""
    flagged: int
    """Trials in which the spike's own reading is flagged (what the service flags)."""
    alerted: int
    """Trials after whose spike the stream goes into alert (the clean run does not)."""
    n_readings: int
    horizon: int

    @property
    def needed(self) -> int:
        """Readings a run needs for the requested spikes at distinct positions, each with the
        windows holding it and a horizon on either side."""
        return 2 * (self.window + self.horizon) + self.requested - 2

    @property
    def verdict(self) -> str:
        """``ok``, ``alerts``, ``too short`` (nothing placed) or ``inconclusive`` (fewer than
        half the spikes placed: the clean run alerts too often)."""
        if self.n_readings < self.needed:
            return "too short"
        if self.alerted:
            return "alerts"
        return "ok" if 2 * self.trials >= self.requested else "inconclusive"

    @property
    def ok(self) -> bool | None:
        """None when the check could not say."""
        return {"ok": True, "alerts": False}.get(self.verdict)

    @property
    def message(self) -> str:
        verdict = self.verdict
        if verdict == "too short":
            return (
                f"not checked: {self.n_readings} readings where {self.needed} are needed "
                f"({self.requested} spikes at distinct positions, each with the {self.window} "
                f"windows holding it and {self.horizon} readings on either side)."
            )
        what = (
            f"a lone {self.size:g}-SD spike on one sensor raised an alert in {self.alerted} of "
            f"{self.trials} trials (flagged at its own reading in {self.flagged})"
        )
        skipped = self.requested - self.trials
        if skipped:
            what += (
                f"; {skipped} of {self.requested} positions skipped: the clean run alerts near them"
            )
        if verdict == "ok":
            return f"ok: {what}."
        if verdict == "inconclusive":
            return f"inconclusive: {what}."
        held = (
            f"The model sees the spike in all {self.window} windows that hold it"
            if self.window > 1
            else "The smoothing carries the spike over several readings"
        )
        return f"WARNING: {what}. {held}, so a one-reading glitch pages someone; {ADVICE}."

    def as_dict(self) -> dict[str, float | int | bool | str | None]:
        return {
            "verdict": self.verdict,
            "ok": self.ok,
            "size_sd": self.size,
            "requested": self.requested,
            "trials": self.trials,
            "flagged": self.flagged,
            "alerted": self.alerted,
        }


def horizon(model: TrainResult | Artifact, rule: AlertRule) -> int:
    """How many scored readings a smoothing and the alert rule carry one reading's score."""
    smoothing = declared_smoothing(model)
    method, window, alpha = (
        (rule.smoothing, rule.window, rule.alpha)
        if smoothing is None
        else (smoothing.method, smoothing.window, smoothing.alpha)
    )
    if method == "ewma":
        carried = math.ceil(math.log(CARRIED) / math.log(1 - alpha)) if alpha < 1 else 1
    elif method in ("mean", "median"):
        carried = window
    else:
        carried = 1
    return max(MIN_HORIZON, carried + rule.n + rule.cooldown)


def lone_spike_check(
    model: TrainResult | Artifact,
    normal_values: np.ndarray,
    *,
    threshold: float,
    size: float = SPIKE_SIZE,
    trials: int = TRIALS,
) -> LoneSpikeCheck:
    """``trials`` spikes, one at a time, at distinct positions spread evenly over
    ``normal_values`` (readings x sensors, one run in time order), cycling over the sensors
    that varied in training, alternating in sign. Positions where the clean run is in alert
    within the horizon are skipped: a spike there could not start an alert."""
    values = np.asarray(normal_values, dtype=np.float64)
    n = len(values)
    window = model_window(model)
    rule = alert_rule_for(model)
    reach = horizon(model, rule)
    scales = list(varying_scales(model).items())
    first, last = window - 1 + reach, n - window - reach
    positions = (
        np.linspace(first, last, trials).round().astype(int)
        if last - first >= trials - 1 and scales
        else np.array([], dtype=int)
    )
    done = flagged = alerted = 0
    if positions.size:
        clean = per_sensor_errors(model, values)
        busy = alerting(scores_from_errors(model, clean) / threshold, rule)
    for k, t in enumerate(positions.tolist()):
        i = t - (window - 1)  # the first scored window that holds reading t
        after = slice(i, i + window + reach)
        if busy[i - reach : after.stop].any():
            continue
        sensor, scale = scales[k * len(scales) // len(positions)]
        segment = values[t - window + 1 : t + window].copy()
        segment[window - 1, sensor] += (1 if k % 2 == 0 else -1) * size * scale
        errors = clean.copy()
        errors[i : i + window] = per_sensor_errors(model, segment)
        normalised = scores_from_errors(model, errors) / threshold
        done += 1
        flagged += bool(normalised[i] > 1.0)
        alerted += bool(alerting(normalised, rule)[after].any())
    return LoneSpikeCheck(size, window, trials, done, flagged, alerted, n, reach)


def check_trained(
    result: TrainResult, training: np.ndarray, calibration: np.ndarray | None
) -> tuple[LoneSpikeCheck, str]:
    """``train``'s check, and on which readings: the calibration run when there is one; else
    the training file's calibration tail when it is long enough; else the whole file."""
    threshold = result.threshold.value
    if calibration is not None:
        return lone_spike_check(result, calibration, threshold=threshold), "the calibration run"
    start, stop = result.splits.get("calibration", (len(training), len(training)))
    tail = lone_spike_check(
        result, training[max(0, start - result.window + 1) : stop], threshold=threshold
    )
    if tail.verdict != "too short":
        return tail, "the training file's calibration tail"
    whole = lone_spike_check(result, training, threshold=threshold)
    return whole, (
        "the whole training file, mostly readings the model learned: they score lower than new "
        "readings, so it may miss an alert"
    )
