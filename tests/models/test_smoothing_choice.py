"""How selection weighs one candidate's smoothings (models/smoothing_choice.py): the split-half
check, the lone-glitch check and thresholds train would refuse."""

from __future__ import annotations

import numpy as np
import pytest

from models.inject import Fault
from models.injected import InjectedRun
from models.operating_point import declared, smooth
from models.selection_rule import CandidateScore
from models.smoothing_choice import (
    split_allowance,
    split_false_alarms,
    split_warning,
    weigh_smoothings,
)
from models.train_config import TrainConfig


def test_a_smoothing_that_holds_excursions_too_long_is_not_chosen() -> None:
    """Two halves of a clean run with different levels: a long EWMA carries the second
    half's excursion above the first half's limit for longer, so its split-half false
    alarms exceed the slack and it is passed over even though it catches more faults."""
    rng = np.random.default_rng(0)
    clean = np.concatenate([rng.gamma(2.0, size=600), 1.6 * rng.gamma(2.0, size=600)])
    faulty = clean.copy()
    faulty[600:] += 2.0
    run = InjectedRun(clean, [(Fault("bias", 0, 600, 1.0), faulty)], window=1)
    long_memory = split_false_alarms(clean, "ewma:0.05", 0.99)
    assert long_memory > 2 * 0.01
    chosen = weigh_smoothings(run, TrainConfig(quantile=0.99), ("none", "ewma:0.05"), 0.0)
    assert chosen.config.smoothing == "none"


def test_a_smoothing_at_which_a_lone_glitch_pages_is_passed_over_while_another_does_not() -> None:
    """An EWMA catches a small bias the raw score misses; where a glitch pages at the EWMA
    and not without it, the raw score is chosen. Where every smoothing pages, or the check
    cannot say, the choice is the one made without asking."""
    rng = np.random.default_rng(0)
    clean = rng.gamma(2.0, size=1200)
    faulty = clean.copy()
    faulty[600:] += 1.0
    run = InjectedRun(clean, [(Fault("bias", 0, 600, 1.0), faulty)], window=1)
    both, config = ("none", "ewma:0.3"), TrainConfig(quantile=0.99)
    unasked = weigh_smoothings(run, config, both, 0.0)
    assert unasked.config.smoothing == "ewma:0.3" and unasked.glitch_pages is None

    def at_the_ewma(spec: str) -> bool:
        return spec != "none"

    quiet = weigh_smoothings(run, config, both, 0.0, pages=at_the_ewma)
    assert quiet.config.smoothing == "none" and quiet.glitch_pages is False
    assert quiet.mean_detection < unasked.mean_detection
    every = weigh_smoothings(run, config, both, 0.0, pages=lambda spec: True)
    assert every.config.smoothing == "ewma:0.3" and every.glitch_pages is True
    unknown = weigh_smoothings(run, config, both, 0.0, pages=lambda spec: None)
    assert unknown.config.smoothing == "ewma:0.3" and unknown.glitch_pages is None


def test_a_smoothing_whose_threshold_train_would_refuse_is_never_chosen() -> None:
    """Isolated spikes on a flat score: a median of 3 removes them all, leaving a tail no
    higher than the median; choosing it would make train refuse a model that was fine."""
    rng = np.random.default_rng(0)
    clean = np.ones(2000)
    clean[rng.choice(2000, 30, replace=False)] = 2.0 + rng.random(30)
    faulty = clean.copy()
    faulty[1000:] += 0.3
    run = InjectedRun(clean, [(Fault("bias", 0, 1000, 1.0), faulty)], window=1)
    chosen = weigh_smoothings(run, TrainConfig(), ("median:3", "none"), 0.0)
    assert chosen.config.smoothing == "none"
    alone = weigh_smoothings(run, TrainConfig(), ("median:3",), 0.0)
    assert alone.detection == {} and alone.mean_detection == 0.0


def test_the_split_half_check_starts_where_it_is_told() -> None:
    rng = np.random.default_rng(3)
    clean = 1.0 + rng.exponential(0.1, size=400)
    clean[200] = 30.0  # the second half opens high
    level = np.full(10, 5.0)
    started = split_false_alarms(clean, "ewma:0.1", 0.99, start_from=level)
    how = declared("ewma:0.1", level)
    first, second = smooth(clean[:200], how), smooth(clean[200:], how)
    by_hand = np.mean(
        [
            np.mean(b > np.quantile(a, 0.99, method="higher"))
            for a, b in ((first, second), (second, first))
        ]
    )
    assert started == by_hand != split_false_alarms(clean, "ewma:0.1", 0.99)


def test_a_chosen_model_beyond_the_split_half_allowance_is_warned_of() -> None:
    """Selection narrows a candidate's smoothings by the allowance but ranks candidates on
    detection, so the one shipped may break it (a short run that drifts between its halves):
    the user is told, with the figures and what to do."""
    config = TrainConfig(family="dpca", window=2, smoothing="median:5", quantile=0.99)
    assert split_allowance(0.99) == pytest.approx(2 * 0.01)
    within = CandidateScore(config, {"drift": 0.2}, 0.0, split_false_alarms=0.02)
    assert split_warning(within, calibration_given=False) is None
    beyond = CandidateScore(config, {"drift": 0.2}, 0.0, split_false_alarms=0.25)
    warning = split_warning(beyond, calibration_given=False)
    assert warning is not None
    assert warning.startswith("the chosen model (dpca window 2, median:5) flags 25.0% of one half")
    assert "above the 2.0% its 0.99 quantile allows" in warning
    assert warning.endswith("pass --calibration-data with normal readings of another run or period")
    given = split_warning(beyond, calibration_given=True)
    assert given is not None and "Check that --calibration-data is normal operation" in given
    unmeasured = CandidateScore(config, {}, 0.0, split_false_alarms=float("nan"))
    assert split_warning(unmeasured, calibration_given=False) is None
