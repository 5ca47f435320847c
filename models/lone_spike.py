"""Does one bad reading page someone? A lone spike on one sensor, injected into normal
readings, run through the model's scores, smoothing and the service's alert rule.

A transmitter glitch is one reading; the service's debounced alert exists so that it does not
raise an alert. A model over a window of readings sees the glitch in every window that holds
it, and a long smoothing carries it further, so whether a glitch alerts depends on the model,
not only on the alert rule. This check tells a user what the chosen operating point does
with a glitch, and selection asks it of each smoothing (models/selection.py: a smoothing at
which a glitch pages is passed over where another is left).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from models.events import AlertRule, alerting
from models.scores import (
    alert_rule_for,
    declared_smoothing,
    glitch_limits_of,
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


def readings_needed(window: int, horizon: int, trials: int) -> int:
    """Readings a run needs for ``trials`` spikes at distinct positions, each with the windows
    holding it and ``horizon`` scored readings on either side."""
    return 2 * (window + horizon) + trials - 2


@dataclass(frozen=True)
class LoneSpikeCheck:
    size: float
    """Spike height, in the sensor's training standard deviations."""
    window: int
    """The model's readings per input."""
    smoothing: str
    """What smooths the scores before the threshold (the declared smoothing's label, or
    ``none``); the service's default smoothing for a model that declares none smooths only
    what the alert rule counts."""
    requested: int
    """Spikes asked for, one per trial."""
    trials: int
    """Spikes placed: positions where the clean run is not in alert nearby."""
    flagged: int
    """Trials in which the spike's own reading is flagged (what the service flags)."""
    alerted: int
    """Trials after whose spike the stream goes into alert (the clean run does not)."""
    n_readings: int
    horizon: int
    varying_sensors: int
    """Sensors that varied in training: a spike in their standard deviations means something."""
    guarded: bool = False
    """The model has the glitch guard (service/scoring/glitches.py)."""
    recorded: Mapping[str, Any] | None = None
    """What ``train`` found and the manifest keeps (``metrics.lone_spike``), said where this
    run is too short to check."""

    @property
    def needed(self) -> int:
        return readings_needed(self.window, self.horizon, self.requested)

    @property
    def verdict(self) -> str:
        """``ok``, ``alerts``, ``not checked`` (a run too short for the requested positions, or
        no sensor that varied) or ``inconclusive`` (fewer than half the spikes placed: the
        clean run alerts too often)."""
        if self.n_readings < self.needed or not self.varying_sensors:
            return "not checked"
        if self.alerted:
            return "alerts"
        return "ok" if 2 * self.trials >= self.requested else "inconclusive"

    @property
    def ok(self) -> bool | None:
        """None when the check could not say (nor ``train``'s, when this one was not run)."""
        verdict = self.verdict
        if verdict == "not checked" and self._train_says is not None:
            verdict = str(self._train_says["verdict"])
        return {"ok": True, "alerts": False}.get(verdict)

    @property
    def _train_says(self) -> Mapping[str, Any] | None:
        """``recorded`` when it is what ``train`` writes and it checked something."""
        said = self.recorded
        if said is None or said.get("verdict") not in ("ok", "alerts", "inconclusive"):
            return None
        return said if isinstance(said.get("message"), str) else None

    @property
    def message(self) -> str:
        verdict = self.verdict
        if not self.varying_sensors:
            return "not checked: no sensor varied in training."
        if verdict == "not checked":
            held = "the window holding it" if self.window == 1 else f"the {self.window} windows"
            short = (
                f"not checked: {self.n_readings} readings where {self.needed} are needed "
                f"({self.requested} spikes at distinct positions, each with {held} and "
                f"{self.horizon} readings on either side)."
            )
            said = self._train_says
            if said is None:
                return short + " Give a longer normal run to check it."
            on = said.get("readings") or "its run"
            return f"{said['message']} (train's check, on {on}; here {short})"
        what = (
            f"a lone {self.size:g}-SD spike on one sensor raised an alert in {self.alerted} of "
            f"{self.trials} trials"
        )
        skipped = self.requested - self.trials
        if skipped:
            what += (
                f" ({skipped} of {self.requested} positions skipped: the clean run alerts "
                "near them)"
            )
        if self.trials and self.flagged == self.trials:
            what += "; flagged at its own reading in every trial"
        elif self.trials:
            count = f"only {self.flagged}" if self.flagged else "none"
            what += (
                f"; flagged at its own reading in {count}: the declared "
                f"{self.smoothing} smoothing hides it from the flags"
                if self.smoothing != "none"
                else f"; flagged at its own reading in {count}"
                + (
                    ": a glitch of this size stays below the threshold"
                    if not (self.flagged or self.alerted)
                    else ""
                )
            )
        if verdict != "alerts":
            return f"{verdict}: {what}."
        return f"WARNING: {what}. {self._causes()}"

    def _causes(self) -> str:
        causes = []
        every = "both" if self.window == 2 else f"all {self.window}"
        if self.window > 1 and not self.guarded:
            causes.append(f"the model sees the spike in {every} windows that hold it")
        elif self.window > 1 and self.smoothing == "none":  # nothing else can carry it
            causes.append(
                "a spike no larger than the training run's own largest jump stays, past the "
                f"glitch guard, in {every} windows that hold it"
            )
        if self.smoothing != "none":
            causes.append(f"the {self.smoothing} smoothing carries its score further")
        because = " and ".join(causes) or "the alert rule counts it"
        advice = (
            "a one-reading model without smoothing before the threshold (--window 1 "
            "--smoothing none) flags a glitch and the service's k-of-n rule keeps it from "
            "paging, at the price of the dynamic faults a window catches (docs/evaluation.md)"
            if self.window > 1
            else "without smoothing before the threshold (--smoothing none) the glitch is "
            "flagged and the service's k-of-n rule keeps it from paging"
        )
        if self.window > 1 and not self.guarded:
            advice = (
                "train --glitch-guard scores a glitch once, at its own reading, where normal "
                f"runs never jump like one (docs/training.md); or {advice}"
            )
        because = because[0].upper() + because[1:]
        return f"{because}, so a one-reading glitch pages someone; {advice}."

    def as_dict(self) -> dict[str, float | int | bool | str | None]:
        return {
            "verdict": self.verdict,
            "ok": self.ok,
            "message": self.message,
            "size_sd": self.size,
            "window": self.window,
            "smoothing": self.smoothing,
            "requested": self.requested,
            "trials": self.trials,
            "flagged": self.flagged,
            "alerted": self.alerted,
            "n_readings": self.n_readings,
            "needed": self.needed,
            "horizon": self.horizon,
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


def spiked_scores(
    model: TrainResult | Artifact,
    values: np.ndarray,
    clean_errors: np.ndarray,
    t: int,
    spike: np.ndarray,
) -> np.ndarray:
    """The run's smoothed scores with ``spike`` (one value per sensor, raw units) added to
    reading ``t``, from its clean per-sensor errors: only the windows holding ``t`` are
    scored again."""
    window = model_window(model)
    if not window - 1 <= t < len(values):
        raise ValueError(f"reading {t} of {len(values)} is not scored by a model over {window}")
    i = t - (window - 1)  # the first scored window that holds reading t
    # The glitch guard judges a reading on its raw neighbours: the spike also changes how
    # t - 1 and t + 1 are judged, and t + 1 sits in one window more, the one ending at
    # t + window. The segment holds one reading more each side, where the run has them.
    start, stop = max(0, t - window), min(len(values), t + window + 1)
    segment = values[start:stop].copy()
    segment[t - start] += spike
    lead = t - start - (window - 1)  # segment windows before the first that holds t
    count = min(window + 1, len(clean_errors) - i)
    errors = clean_errors.copy()
    errors[i : i + count] = per_sensor_errors(model, segment)[lead : lead + count]
    return scores_from_errors(model, errors)


def lone_spike_check(
    model: TrainResult | Artifact,
    normal_values: np.ndarray,
    *,
    threshold: float,
    size: float = SPIKE_SIZE,
    trials: int = TRIALS,
    clean_errors: np.ndarray | None = None,
) -> LoneSpikeCheck:
    """``trials`` spikes, one at a time, at distinct positions spread evenly over
    ``normal_values`` (readings x sensors, one run in time order), alternating in sign. The
    sensors that varied in training are taken in order, each for a block of consecutive
    trials, so that every sensor gets both signs when there are fewer sensors than trials.
    Positions where the clean run is in alert within the horizon are skipped: a spike there
    could not start an alert. ``clean_errors``: the run's per-sensor errors, when the caller
    has them (they depend on the model and the run, not on its smoothing or threshold)."""
    values = np.asarray(normal_values, dtype=np.float64)
    n = len(values)
    window = model_window(model)
    rule = alert_rule_for(model)
    reach = horizon(model, rule)
    scales = list(varying_scales(model).items())
    smoothing = declared_smoothing(model)
    enough = n >= readings_needed(window, reach, trials) and bool(scales)
    first, last = window - 1 + reach, n - window - reach
    positions: list[int] = (
        np.linspace(first, last, trials).round().astype(int).tolist() if enough else []
    )
    done = flagged = alerted = 0
    if enough:
        clean = per_sensor_errors(model, values) if clean_errors is None else clean_errors
        busy = alerting(scores_from_errors(model, clean) / threshold, rule)
    for k, t in enumerate(positions):
        i = t - (window - 1)
        after = slice(i, i + window + reach)
        if busy[i - reach : after.stop].any():
            continue
        sensor, scale = scales[k * len(scales) // len(positions)]
        spike = np.zeros(values.shape[1])
        spike[sensor] = (1 if k % 2 == 0 else -1) * size * scale
        normalised = spiked_scores(model, values, clean, int(t), spike) / threshold
        done += 1
        flagged += bool(normalised[i] > 1.0)
        alerted += bool(alerting(normalised, rule)[after].any())
    return LoneSpikeCheck(
        size=size,
        window=window,
        smoothing="none" if smoothing is None else smoothing.label(),
        requested=trials,
        trials=done,
        flagged=flagged,
        alerted=alerted,
        n_readings=n,
        horizon=reach,
        varying_sensors=len(scales),
        guarded=glitch_limits_of(model) is not None,
    )


def check_trained(
    result: TrainResult, training: np.ndarray, calibration: np.ndarray | None
) -> tuple[LoneSpikeCheck, str]:
    """``train``'s check, and on which readings: the calibration run when there is one; else
    the training file's calibration tail when it is long enough (with the ``window - 1``
    readings before it, so that every tail reading is scored); else the whole file."""
    threshold = result.threshold.value
    if calibration is not None:
        return lone_spike_check(result, calibration, threshold=threshold), "the calibration run"
    start, stop = result.splits.get("calibration", (len(training), len(training)))
    tail = lone_spike_check(
        result, training[max(0, start - result.window + 1) : stop], threshold=threshold
    )
    if tail.verdict != "not checked":
        if result.metrics.get("out_of_time", {}).get("applied"):
            return tail, (
                "the training file's calibration tail, scored in time against a threshold "
                "from out-of-time errors, which are higher: it may miss an alert"
            )
        return tail, "the training file's calibration tail"
    whole = lone_spike_check(result, training, threshold=threshold)
    return whole, (
        "the whole training file, mostly readings the model learned: they score lower than new "
        "readings, so it may miss an alert"
    )
