"""What one glitch does to the alert, on models fitted here to a synthetic plant."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models.events import AlertRule, alerting
from models.lone_spike import (
    LoneSpikeCheck,
    check_trained,
    horizon,
    lone_spike_check,
)
from models.scores import alert_rule_for, per_sensor_errors, scores_from_errors
from models.synthetic import generate_plant
from models.train import TrainConfig, TrainResult, train

N_SENSORS = 8


@pytest.fixture(scope="module")
def plant() -> dict[str, np.ndarray]:
    return {
        name: generate_plant(n, seed=seed, n_sensors=N_SENSORS).values
        for name, n, seed in (("train", 3000, 0), ("calibration", 1500, 1), ("normal", 1500, 2))
    }


def fitted(plant: dict[str, np.ndarray], window: int, smoothing: str = "none") -> TrainResult:
    return train(
        plant["train"],
        [f"s{i}" for i in range(N_SENSORS)],
        TrainConfig(family="dpca", window=window, smoothing=smoothing),
        calibration_values=plant["calibration"],
    )


def check(result: TrainResult, normal: np.ndarray, size: float = 8.0) -> LoneSpikeCheck:
    return lone_spike_check(result, normal, threshold=result.threshold.value, size=size)


def test_one_reading_model_flags_a_spike_without_alerting(plant: dict[str, np.ndarray]) -> None:
    result = check(fitted(plant, 1), plant["normal"])
    assert result.trials >= 15
    assert result.flagged == result.trials
    assert result.alerted == 0
    assert result.ok is True and result.message.startswith("ok:")


def test_windowed_model_holds_a_spike_into_an_alert(plant: dict[str, np.ndarray]) -> None:
    result = check(fitted(plant, 8), plant["normal"])
    assert result.trials >= 15
    assert result.alerted >= result.trials // 4  # one-reading DPCA: none (above)
    assert result.ok is False and result.verdict == "alerts"
    assert result.message.startswith("WARNING:")
    assert f"in {result.alerted} of {result.trials} trials" in result.message
    assert "all 8 windows" in result.message and "--window 1 --smoothing median:3" in result.message


def test_an_ewma_carries_a_spike_into_an_alert(plant: dict[str, np.ndarray]) -> None:
    """One reading, but a declared EWMA keeps its large score above the threshold for the
    alert rule's k readings."""
    result = check(fitted(plant, 1, "ewma:0.3"), plant["normal"])
    assert result.trials >= 15 and result.alerted > 0
    assert "The smoothing carries the spike" in result.message


def test_a_median_ignores_a_spike_only_over_one_reading(plant: dict[str, np.ndarray]) -> None:
    one = check(fitted(plant, 1, "median:3"), plant["normal"])
    assert one.trials >= 15 and one.alerted == 0 and one.ok is True
    # Over 3 readings the glitch is in three windows in a row: the median keeps it.
    three = check(fitted(plant, 3, "median:3"), plant["normal"])
    assert three.trials >= 15 and three.alerted > three.trials // 2


def test_a_small_spike_raises_nothing(plant: dict[str, np.ndarray]) -> None:
    result = check(fitted(plant, 8), plant["normal"], size=1.0)
    assert result.trials >= 15
    assert result.alerted == 0 and result.flagged < result.trials // 4


@pytest.mark.parametrize("window", [1, 3, 8])
def test_a_trial_is_the_whole_spiked_run_scored_again(
    plant: dict[str, np.ndarray], window: int
) -> None:
    """The check scores only the windows holding the spike; scoring the whole spiked run gives
    the same verdict for the one spike a single trial places (at the first position, on the
    first sensor, upwards)."""
    model = fitted(plant, window, "ewma:0.3")
    threshold = model.threshold.value
    rule = alert_rule_for(model)
    reach = horizon(model, rule)
    spiked = plant["normal"].copy()
    t = window - 1 + reach
    spiked[t, 0] += 8.0 * model.scaler_scale[0]
    normalised = scores_from_errors(model, per_sensor_errors(model, spiked)) / threshold
    i = t - (window - 1)
    one = lone_spike_check(model, plant["normal"], threshold=threshold, trials=1)
    assert one.trials == 1
    assert one.flagged == int(normalised[i] > 1.0)
    assert one.alerted == int(alerting(normalised, rule)[i : i + window + reach].any())


def test_positions_where_the_clean_run_is_in_alert_are_not_trials(
    plant: dict[str, np.ndarray],
) -> None:
    """With a threshold every reading exceeds, the clean run is in alert throughout: no spike
    could start one, so nothing is claimed."""
    skipped = lone_spike_check(fitted(plant, 1), plant["normal"], threshold=1e-12)
    assert skipped.trials == 0 and skipped.verdict == "inconclusive"
    assert skipped.ok is None and skipped.message.startswith("inconclusive:")
    assert "20 of 20 positions skipped: the clean run alerts near them" in skipped.message


def test_a_run_too_short_for_distinct_positions_is_not_checked(
    plant: dict[str, np.ndarray],
) -> None:
    model = fitted(plant, 1)
    needed = 2 * (1 + 100) + 20 - 2
    short = check(model, plant["normal"][: needed - 1])
    assert short.trials == 0 and short.verdict == "too short" and short.ok is None
    assert short.message.startswith(f"not checked: {needed - 1} readings where {needed} are")
    assert check(model, plant["normal"][:needed]).trials == 20


def test_the_horizon_follows_a_long_smoothing(plant: dict[str, np.ndarray]) -> None:
    """Long enough for what the declared smoothing and the rule's k of n and cool-down carry,
    never under the floor."""
    base = fitted(plant, 1)
    rule = AlertRule("none")  # n 5, cool-down 10
    for spec, expected in (
        ("none", 100),
        ("ewma:0.3", 100),
        ("ewma:0.01", 459 + 15),
        ("mean:500", 515),
    ):
        model = replace(base, config=replace(base.config, smoothing=spec))
        assert horizon(model, rule) == expected, spec


def test_train_checks_the_calibration_tail_without_a_calibration_run(
    plant: dict[str, np.ndarray],
) -> None:
    model = train(plant["train"], [f"s{i}" for i in range(N_SENSORS)], TrainConfig(family="dpca"))
    result, readings = check_trained(model, plant["train"], None)
    assert readings == "the training file's calibration tail"
    assert result.n_readings == 450  # the last 15% of 3000
    tiny = train(
        plant["train"][:1000], [f"s{i}" for i in range(N_SENSORS)], TrainConfig(family="dpca")
    )
    whole, readings = check_trained(tiny, plant["train"][:1000], None)
    assert readings.startswith("the whole training file") and whole.n_readings == 1000
