"""The selection rule: which of several scored options (candidates, or one candidate's
smoothings) a model ships with.

The one-standard-error rule of Breiman et al. (1984; Hastie, Tibshirani & Friedman,
*Elements of Statistical Learning*, 7.10), applied in turn to what matters to the product:
detection of the faults injected into the calibration run, then how soon they are caught,
then what the model costs to serve. A difference inside the noise of the injected faults
does not rank; the rule has no weights to tune (docs/training.md, "The rule that chooses").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from models.train_config import TrainConfig


def candidate_label(family: str, window: int, residual: str, smoothing: str) -> str:
    """How output names a candidate.

    >>> candidate_label("vae", 8, "whitened", "ewma:0.1")
    'vae window 8, whitened, ewma:0.1'
    """
    whitened = ", whitened" if residual == "whitened" else ""
    smoothed = "" if smoothing == "none" else f", {smoothing}"
    return f"{family} window {window}{whitened}{smoothed}"


@dataclass(frozen=True)
class CandidateScore:
    config: TrainConfig
    """The candidate, its ``smoothing`` the best of those it was weighed with."""
    detection: dict[str, float]
    """Detection rate per kind of injected fault."""
    seconds: float
    split_false_alarms: float
    """False alarms on one half of the clean calibration run at a limit set on the other,
    both ways round, averaged: how well the operating point carries to other data."""
    rates: tuple[float, ...] = ()
    """Detection rate of each injected fault, in the plan's order (paired across options)."""
    delays: tuple[float, ...] = ()
    """Readings from the onset to the first one flagged that the clean run does not flag,
    per fault but the spikes."""
    multiply_adds: int = 0
    """Of the scoring module's matrix products and convolutions, per scored reading."""
    out_at: str | None = None
    """Which step of the rule passed this option over (detection, delay, cost); None for
    the winner."""
    glitch_pages: bool | None = None
    """Whether a lone spike on one sensor raises an alert at this option's smoothing and
    threshold (None: not checked)."""
    clean: dict[str, float] = field(default_factory=dict)
    """Per kind, as ``detection``: the share of the same readings the clean run has flagged,
    what the rate would be if the faults changed nothing."""

    @property
    def label(self) -> str:
        config = self.config
        return candidate_label(config.family, config.window, config.residual, config.smoothing)

    @property
    def mean_detection(self) -> float:
        """0 for a candidate whose every smoothing left a threshold train refuses."""
        return float(np.mean(list(self.detection.values()))) if self.detection else 0.0

    @property
    def mean_delay(self) -> float:
        return float(np.mean(self.delays)) if self.delays else 0.0

    @property
    def mean_clean(self) -> float:
        """As :attr:`mean_detection`, of the clean run's flags on the same readings."""
        return float(np.mean(list(self.clean.values()))) if self.clean else 0.0


def _within_one_se(values: list[np.ndarray], best: int, *, lower_is_better: bool) -> list[bool]:
    """Whether each option is no worse than option ``best`` by more than the standard error
    of their paired difference over the same faults."""
    sign = -1.0 if lower_is_better else 1.0
    out = []
    for v in values:
        gap = sign * (values[best] - v)  # how much worse than the best, fault by fault
        se = float(gap.std(ddof=1) / np.sqrt(len(gap))) if len(gap) > 1 else 0.0
        out.append(float(gap.mean()) <= se + 1e-12)
    return out


def apply_rule(options: list[CandidateScore]) -> list[CandidateScore]:
    """The options with ``out_at`` filled in, in the given order; the winner's is None.

    1. detection: keep those within one standard error (paired over the injected faults) of
       the highest mean detection rate;
    2. delay: of those, keep those within one standard error of the shortest mean delay;
    3. cost: of those, the fewest multiply-adds; ties to the earlier option.

    Options that scored no fault (every threshold refused) are out at detection unless
    nothing else is left, in which case the first wins."""
    live = [i for i, o in enumerate(options) if o.rates]
    out: dict[int, str] = {i: "detection" for i in range(len(options)) if i not in live}
    if live:
        rates = [np.asarray(options[i].rates) for i in live]
        best = max(range(len(live)), key=lambda j: (float(rates[j].mean()), -j))
        kept = [
            i
            for i, ok in zip(live, _within_one_se(rates, best, lower_is_better=False), strict=True)
            if ok
        ]
        out |= {i: "detection" for i in live if i not in kept}
        delays = [np.asarray(options[i].delays) for i in kept]
        if all(len(d) for d in delays):
            fastest = min(range(len(kept)), key=lambda j: (float(delays[j].mean()), j))
            ok = _within_one_se(delays, fastest, lower_is_better=True)
            out |= {i: "delay" for i, good in zip(kept, ok, strict=True) if not good}
            kept = [i for i, good in zip(kept, ok, strict=True) if good]
        winner = min(kept, key=lambda i: (options[i].multiply_adds, i))
        out |= {i: "cost" for i in kept if i != winner}
    else:
        out.pop(0, None)
    return [replace(o, out_at=out.get(i)) for i, o in enumerate(options)]


def blind_warning(chosen: CandidateScore, *, calibration_given: bool) -> str | None:
    """A warning when the chosen option flags no larger share of the readings after the
    injected faults' onset than the clean calibration run flags of the same readings: at its
    threshold the faults change nothing it shows."""
    if not chosen.detection or chosen.mean_detection > chosen.mean_clean:
        return None
    remedy = (
        "Check that --calibration-data is normal operation of the same process, or train "
        "on more normal data"
        if calibration_given
        else "Train on more normal data, or pass --calibration-data with normal readings of "
        "another run or period"
    )
    return (
        f"the chosen model ({chosen.label}) flags {chosen.mean_detection:.1%} of the readings "
        "after the onset of the faults injected into its calibration run, no more than the "
        f"{chosen.mean_clean:.1%} it flags of the same readings without them: at its "
        f"threshold these faults change nothing it shows. {remedy}"
    )
