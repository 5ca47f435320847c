"""The selection rule (models/selection_rule.py) on constructed options: detection first,
within one standard error; then delay the same way; then serving cost."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.inject import Fault
from models.injected import InjectedRun, outcomes
from models.selection import multiply_adds
from models.selection_rule import CandidateScore, apply_rule, blind_warning
from models.train import train
from models.train_config import TrainConfig
from tests.models.test_linear import ar_process

RNG = np.random.default_rng(0)
NOISE = RNG.normal(scale=0.05, size=40)


def option(rate: float, delay: float, cost: int, *, family: str = "dpca") -> CandidateScore:
    """Forty faults detected at ``rate`` (give or take the same noise for every option, so
    the paired differences are what the rates say) after ``delay`` readings."""
    rates = tuple(np.clip(rate + NOISE, 0, 1))
    delays = tuple(delay + 10 * NOISE)
    config = TrainConfig(family=family, window=2)
    return CandidateScore(config, {"bias": rate}, 0.0, 0.01, rates, delays, cost)


def winner(options: list[CandidateScore]) -> int:
    judged = apply_rule(options)
    return next(i for i, o in enumerate(judged) if o.out_at is None)


def test_clearly_better_detection_wins_whatever_it_costs() -> None:
    judged = apply_rule([option(0.6, 5.0, 10), option(0.9, 9.0, 1000)])
    assert [o.out_at for o in judged] == ["detection", None]


def test_a_detection_inside_the_noise_does_not_rank_and_the_sooner_wins() -> None:
    rng = np.random.default_rng(1)
    noisy = [
        CandidateScore(
            TrainConfig(family="dpca", window=2),
            {},
            0.0,
            0.01,
            tuple(rng.uniform(0, 1, 40)),
            tuple(rng.uniform(0, 40, 40) + shift),
            1000,
        )
        for shift in (30.0, 0.0)
    ]
    # Independent per-fault rates: their paired difference has a standard error near 0.06.
    gap = np.mean(noisy[0].rates) - np.mean(noisy[1].rates)
    assert abs(gap) < 0.06
    assert [o.out_at for o in apply_rule(noisy)] == ["delay", None]


def test_among_equals_the_cheapest_wins_and_then_the_earlier() -> None:
    assert winner([option(0.8, 5.0, 1000), option(0.8, 5.0, 100)]) == 1
    assert winner([option(0.8, 5.0, 100), option(0.8, 5.0, 100)]) == 0
    judged = apply_rule([option(0.8, 5.0, 1000), option(0.8, 5.0, 100)])
    assert judged[0].out_at == "cost"


def test_an_option_that_scored_nothing_never_wins_unless_alone() -> None:
    empty = CandidateScore(TrainConfig(family="dpca", window=2), {}, 0.0, 1.0)
    assert winner([empty, option(0.1, 50.0, 10**6)]) == 1
    assert [o.out_at for o in apply_rule([empty])] == [None]


def test_the_delay_is_counted_from_the_onset_to_the_first_flagged_reading() -> None:
    """Scores of a window-3 model: score i is of the window ending at reading i + 2."""
    rng = np.random.default_rng(2)
    clean = rng.uniform(0, 1, 400)
    late = clean.copy()
    late[200 - 2 + 7 :] += 5.0  # the window ending 7 readings after the onset
    missed = clean.copy()
    faults = [(Fault("bias", 0, 200, 1.0), late), (Fault("drift", 0, 200, 1.0), missed)]
    found = outcomes(InjectedRun(clean, faults, window=3), "none", 0.999)
    assert found.delays[0] == 7
    assert found.delays[1] == len(clean) - (200 - 2)  # never flagged: every reading after
    assert found.rates[0] > 0.9 and found.rates[1] < 0.05


@pytest.mark.parametrize("smoothing", ["none", "ewma:0.3"])
def test_a_false_alarm_of_the_clean_run_after_the_onset_is_no_detection(smoothing: str) -> None:
    """Every fault starts at the same reading: an excursion of the clean run 3 readings after
    it, which every faulty copy carries, must not count as the faults' detection."""
    rng = np.random.default_rng(3)
    clean = rng.uniform(0, 1, 400)
    clean[200 - 2 + 3 : 200 - 2 + 6] += 50.0  # in the clean run and every copy of it
    clean[200 - 2 + 30] = 0.0  # the fault's first reading is no false alarm of its own
    late = clean.copy()
    late[200 - 2 + 30 :] += 100.0
    missed = clean.copy()
    faults = [(Fault("bias", 0, 200, 1.0), late), (Fault("drift", 0, 200, 1.0), missed)]
    found = outcomes(InjectedRun(clean, faults, window=3), smoothing, 0.95)
    assert found.delays[0] == 30
    assert found.delays[1] == len(clean) - (200 - 2)


def test_serving_cost_counts_the_products_of_each_form() -> None:
    values = ar_process(900, 6, seed=4)
    sensors = [f"s{i}" for i in range(6)]
    cva = train(
        values[:600], sensors, TrainConfig(family="cva", window=4), calibration_values=values[600:]
    )
    assert multiply_adds(cva) == 24 * 24  # one dense (n x n) product
    dpca = train(
        values[:600], sensors, TrainConfig(family="dpca", window=4), calibration_values=values[600:]
    )
    rank = dpca.metrics["dpca"].get("root_rank")
    assert rank is not None and multiply_adds(dpca) == 2 * 24 * rank < 24 * 24


def test_a_choice_that_flags_faults_no_more_than_the_clean_run_is_warned_of() -> None:
    """A rate no higher than the clean run's flags on the same readings is no detection."""
    clean = {"bias": 0.02, "drift": 0.0}
    blind = replace(option(0.01, 5.0, 100), detection={"bias": 0.02, "drift": 0.0}, clean=clean)
    warning = blind_warning(blind, calibration_given=True)
    assert warning is not None
    assert "flags 1.0% of the readings" in warning and "no more than the 1.0% it flags" in warning
    assert "Check that --calibration-data is normal operation" in warning
    alone = blind_warning(blind, calibration_given=False)
    assert alone is not None and "pass --calibration-data with normal readings" in alone
    seeing = replace(blind, detection={"bias": 0.02, "drift": 0.001})
    assert blind_warning(seeing, calibration_given=True) is None
    assert (
        blind_warning(CandidateScore(TrainConfig(), {}, 0.0, 1.0), calibration_given=True) is None
    )


def test_the_clean_runs_flags_are_counted_on_the_readings_each_rate_counts() -> None:
    """A copy the fault does not change has the clean run's rate, whatever the clean run
    flags before the onset; a fault that adds flags has a higher one."""
    rng = np.random.default_rng(4)
    clean = rng.uniform(0, 1, 400)
    clean[250:260] += 50.0  # after the onset: every copy carries it
    clean[20:40] += 50.0  # before it: no copy's rate counts it
    raised = clean.copy()
    raised[300:] += 50.0
    faults = [(Fault("bias", 0, 200, 1.0), clean.copy()), (Fault("drift", 0, 200, 1.0), raised)]
    found = outcomes(InjectedRun(clean, faults, window=3), "none", 0.9)
    assert found.detection["bias"] == found.clean["bias"] == found.clean["drift"]
    assert 10 / (400 - 198) <= found.clean["bias"] < 0.1  # the 20 before the onset left out
    assert found.detection["drift"] > found.clean["drift"] + 0.4
