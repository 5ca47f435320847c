"""What one glitch does to the alert, on models fitted here to a synthetic plant."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pytest

from models.events import AlertRule, alerting
from models.injected import injected_run
from models.lone_spike import (
    LoneSpikeCheck,
    check_trained,
    horizon,
    lone_spike_check,
    spiked_scores,
)
from models.out_of_time import calibrate_out_of_time, out_of_time_scores
from models.scores import alert_rule_for, per_sensor_errors, scores_from_errors
from models.selection import choose_smoothing
from models.smoothing_choice import glitch_pages, weigh_smoothings
from models.synthetic import generate_plant
from models.train import TrainResult, train
from models.train_config import TrainConfig

N_SENSORS = 8


@pytest.fixture(scope="module")
def plant() -> dict[str, np.ndarray]:
    return {
        name: generate_plant(n, seed=seed, n_sensors=N_SENSORS).values
        for name, n, seed in (("train", 3000, 0), ("calibration", 1500, 1), ("normal", 1500, 2))
    }


def fitted(
    plant: dict[str, np.ndarray], window: int, smoothing: str = "none", *, guard: bool = False
) -> TrainResult:
    return train(
        plant["train"],
        [f"s{i}" for i in range(N_SENSORS)],
        TrainConfig(family="dpca", window=window, smoothing=smoothing, glitch_guard=guard),
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
    assert "flagged at its own reading in every trial" in result.message


def test_windowed_model_holds_a_spike_into_an_alert(plant: dict[str, np.ndarray]) -> None:
    result = check(fitted(plant, 8), plant["normal"])
    assert result.trials >= 15
    assert result.alerted >= result.trials // 4  # one-reading DPCA: none (above)
    assert result.ok is False and result.verdict == "alerts"
    assert result.message.startswith("WARNING:")
    assert f"in {result.alerted} of {result.trials} trials" in result.message
    assert "The model sees the spike in all 8 windows that hold it, so" in result.message
    assert "(--window 1 --smoothing none) flags a glitch" in result.message
    assert "train --glitch-guard scores a glitch once" in result.message
    guarded = replace(result, guarded=True)  # one that alerts with it gets no such advice
    assert "--glitch-guard" not in guarded.message and guarded.verdict == "alerts"
    assert "stays, past the glitch guard, in all 8 windows" in guarded.message
    smoothed = replace(guarded, smoothing="ewma:0.3")  # the smoothing carries the glitch
    assert "past the glitch guard" not in smoothed.message
    assert smoothed.message.count("ewma:0.3 smoothing carries its score further") == 1


def test_an_ewma_carries_a_spike_into_an_alert(plant: dict[str, np.ndarray]) -> None:
    """One reading, but a declared EWMA keeps its large score above the threshold for the
    alert rule's k readings."""
    result = check(fitted(plant, 1, "ewma:0.3"), plant["normal"])
    assert result.trials >= 15 and result.alerted > 0
    assert "The ewma:0.3 smoothing carries its score further, so" in result.message
    assert "windows" not in result.message  # one reading: the window is no cause


def test_a_declared_median_ignores_a_spike_but_hides_it_too(
    plant: dict[str, np.ndarray],
) -> None:
    one = check(fitted(plant, 1, "median:3"), plant["normal"])
    assert one.trials >= 15 and one.alerted == 0 and one.ok is True
    assert one.flagged == 0  # the service flags the declared median, which drops one reading
    assert "the declared median:3 smoothing hides it from the flags" in one.message
    # Over 3 readings the glitch is in three windows in a row: the median keeps it.
    three = check(fitted(plant, 3, "median:3"), plant["normal"])
    assert three.trials >= 15 and three.alerted > three.trials // 2
    assert "all 3 windows" in three.message and "median:3 smoothing carries" in three.message


@pytest.mark.parametrize("smoothing", ["none", "ewma:0.5", "mean:3"])
def test_the_glitch_guard_keeps_a_spike_from_alerting_a_windowed_model(
    plant: dict[str, np.ndarray], smoothing: str
) -> None:
    """Without the guard half the spikes alert; with it none does, and each is still scored
    at its own reading as before (flagged as often)."""
    plain = check(fitted(plant, 8, smoothing), plant["normal"])
    assert plain.trials >= 15 and plain.alerted >= plain.trials // 2
    guarded = check(fitted(plant, 8, smoothing, guard=True), plant["normal"])
    assert guarded.trials == plain.trials
    assert guarded.alerted == 0 and guarded.flagged == plain.flagged


@pytest.mark.parametrize("beside", [1, -2])
def test_a_guarded_trial_rescores_every_window_the_spike_changes(
    plant: dict[str, np.ndarray], beside: int
) -> None:
    """The guard judges a reading on its raw neighbours: a spike at t decides whether a
    glitch of the clean run at t + 1 is put back (it then sits in the window ending at
    t + 3 too), and a glitch at t - 2 is judged on t - 3, which the segment must hold."""
    window, t, sensor = 3, 700, 3
    model = fitted(plant, window, guard=True)
    values = plant["normal"].copy()
    values[t + beside, sensor] += 8 * model.scaler_scale[sensor]  # the clean run's glitch
    clean = per_sensor_errors(model, values)
    spike = np.zeros(N_SENSORS)
    spike[sensor] = 8 * model.scaler_scale[sensor]
    spiked = values.copy()
    spiked[t] += spike
    expected = scores_from_errors(model, per_sensor_errors(model, spiked))
    np.testing.assert_allclose(
        spiked_scores(model, values, clean, t, spike), expected, rtol=1e-5, atol=1e-9
    )
    with pytest.raises(ValueError, match="not scored"):  # no window ends there
        spiked_scores(model, values, clean, window - 2, spike)


def test_a_small_spike_raises_nothing(plant: dict[str, np.ndarray]) -> None:
    result = check(fitted(plant, 8), plant["normal"], size=1.0)
    assert result.trials >= 15
    assert result.alerted == 0 and result.flagged < result.trials // 4


@pytest.mark.parametrize("guard", [False, True])
@pytest.mark.parametrize("window", [1, 3, 8])
def test_a_trials_scores_are_the_whole_spiked_run_scored_again(
    plant: dict[str, np.ndarray], window: int, guard: bool
) -> None:
    """Only the windows holding the spike are scored again; the smoothed scores of the whole
    run are those of the spiked run scored from scratch, wherever the spike is (with the
    glitch guard too, which judges a reading on both neighbours)."""
    model = fitted(plant, window, "ewma:0.3", guard=guard)
    values = plant["normal"]
    clean = per_sensor_errors(model, values)
    for t, sensor, height in ((window - 1, 0, 8.0), (700, 3, -5.0), (len(values) - window, 7, 3.0)):
        spike = np.zeros(N_SENSORS)
        spike[sensor] = height * model.scaler_scale[sensor]
        spiked = values.copy()
        spiked[t] += spike
        expected = scores_from_errors(model, per_sensor_errors(model, spiked))
        np.testing.assert_allclose(
            spiked_scores(model, values, clean, t, spike), expected, rtol=1e-5, atol=1e-9
        )


def test_a_trial_counts_what_the_models_alert_rule_does(plant: dict[str, np.ndarray]) -> None:
    """One trial (the first position, the first sensor, upwards) against the spiked run's
    alert states under the model's own rule, counted from the spike's first window to the
    horizon after its last."""
    model = fitted(plant, 3, "ewma:0.3")
    threshold = model.threshold.value
    rule = alert_rule_for(model)
    assert rule.smoothing == "none"  # the declared EWMA is not smoothed again
    reach = horizon(model, rule)
    t = 2 + reach
    spike = np.zeros(N_SENSORS)
    spike[0] = 8.0 * model.scaler_scale[0]
    clean = per_sensor_errors(model, plant["normal"])
    normalised = spiked_scores(model, plant["normal"], clean, t, spike) / threshold
    states = alerting(normalised, rule)
    one = lone_spike_check(model, plant["normal"], threshold=threshold, trials=1)
    assert one.trials == 1
    assert one.flagged == int(normalised[t - 2] > 1.0)
    assert one.alerted == int(states[t - 2 : t + 1 + reach].any())


def test_positions_near_the_clean_runs_own_alerts_are_skipped(
    plant: dict[str, np.ndarray],
) -> None:
    """A sustained fault in the normal run puts it in alert over one stretch: exactly the
    positions whose spike, windows and horizon would touch that stretch are skipped."""
    model = fitted(plant, 1)
    threshold = model.threshold.value
    values = plant["normal"].copy()
    values[700:760, 2] += 10 * model.scaler_scale[2]
    busy = np.flatnonzero(
        alerting(
            scores_from_errors(model, per_sensor_errors(model, values)) / threshold,
            alert_rule_for(model),
        )
    )
    result = check(model, values)
    reach = result.horizon
    positions = np.linspace(reach, len(values) - 1 - reach, 20).round()
    near = [p for p in positions if busy[(busy >= p - reach) & (busy < p + 1 + reach)].size]
    assert 0 < len(near) < 10
    assert result.trials == 20 - len(near)
    assert f"({len(near)} of 20 positions skipped: the clean run alerts near them)" in (
        result.message
    )


@pytest.mark.parametrize(
    ("placed", "verdict"), [(10, "ok"), (9, "inconclusive"), (0, "inconclusive")]
)
def test_fewer_than_half_the_spikes_placed_is_inconclusive(placed: int, verdict: str) -> None:
    result = LoneSpikeCheck(8.0, 1, "none", 20, placed, placed, 0, 1500, 100, 8)
    assert result.verdict == verdict and result.message.startswith(f"{verdict}:")
    assert result.ok is (True if verdict == "ok" else None)


def test_a_run_too_short_for_distinct_positions_is_not_checked(
    plant: dict[str, np.ndarray],
) -> None:
    model = fitted(plant, 1)
    short = check(model, plant["normal"][:219])  # 2 x (1 + 100) + 20 - 2 = 220 are needed
    assert short.trials == 0 and short.verdict == "not checked" and short.ok is None
    assert short.message.startswith("not checked: 219 readings where 220 are needed")
    assert "each with the window holding it and 100 readings" in short.message
    assert check(model, plant["normal"][:220]).trials == 20


def test_too_short_a_run_says_what_train_found_on_its_own() -> None:
    """evaluate on a short normal file: the manifest's check stands in, said as train's."""
    short = LoneSpikeCheck(8.0, 8, "ewma:0.3", 20, 0, 0, 0, 160, 100, 52)
    assert short.ok is None and short.message.endswith("Give a longer normal run to check it.")
    found = LoneSpikeCheck(8.0, 8, "ewma:0.3", 20, 14, 3, 11, 960, 100, 52).as_dict()
    found["readings"] = "the calibration run"
    said = replace(short, recorded=found)
    assert said.verdict == "not checked" and said.ok is False
    assert said.message.startswith("WARNING: a lone 8-SD spike on one sensor raised an alert")
    assert "(train's check, on the calibration run; here not checked: 160 readings" in said.message
    garbled = replace(short, recorded={"verdict": "alerts", "message": 3})
    assert garbled.ok is None and garbled.message == short.message


def test_no_sensor_that_varied_is_not_checked() -> None:
    result = LoneSpikeCheck(8.0, 1, "none", 20, 0, 0, 0, 1500, 100, varying_sensors=0)
    assert result.verdict == "not checked"
    assert result.message == "not checked: no sensor varied in training."


def test_the_horizon_follows_a_long_smoothing(plant: dict[str, np.ndarray]) -> None:
    """Long enough for what the declared smoothing and the rule's k of n and cool-down carry,
    never under the floor; for a model that declares none, what the service's rule smooths."""
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
    undeclared = cast(Any, SimpleNamespace(manifest=SimpleNamespace(smoothing=None)))
    assert horizon(undeclared, AlertRule("mean", window=500)) == 515
    assert horizon(undeclared, AlertRule()) == 100


def test_train_checks_the_calibration_tail_without_a_calibration_run(
    plant: dict[str, np.ndarray],
) -> None:
    sensors = [f"s{i}" for i in range(N_SENSORS)]
    model = train(plant["train"], sensors, TrainConfig(family="dpca", window=8))
    result, readings = check_trained(model, plant["train"], None)
    assert readings == "the training file's calibration tail"
    assert result.n_readings == 450 + 7  # the last 15% of 3000, and 7 readings of context
    assert result.verdict != "not checked"
    # 450 readings cannot back a 0.99 quantile: the threshold comes from out-of-time errors
    shipped = calibrate_out_of_time(model, plant["train"])
    _, readings = check_trained(shipped, plant["train"], None)
    assert readings.startswith("the training file's calibration tail, scored in time against")
    assert readings.endswith("it may miss an alert")
    tiny = train(plant["train"][:1000], sensors, TrainConfig(family="dpca"))
    whole, readings = check_trained(tiny, plant["train"][:1000], None)
    assert readings.startswith("the whole training file") and whole.n_readings == 1000
    assert readings.endswith("it may miss an alert")


def test_the_message_says_when_no_spike_is_flagged_and_claims_nothing_of_no_trials() -> None:
    check = LoneSpikeCheck(
        size=8.0, window=1, smoothing="none", requested=20, trials=20, flagged=0, alerted=0,
        n_readings=10_000, horizon=100, varying_sensors=5,
    )  # fmt: skip
    assert check.verdict == "ok"
    assert check.message.endswith(
        "flagged at its own reading in none: a glitch of this size stays below the threshold."
    )
    paging = replace(check, alerted=4).message  # later windows, not its own, page
    assert "flagged at its own reading in none." in paging and "below the threshold" not in paging
    smoothed = replace(check, smoothing="median:3")
    assert "in none: the declared median:3 smoothing hides it" in smoothed.message
    assert "in only 3: the declared" in replace(smoothed, flagged=3).message
    unplaced = replace(check, trials=0)
    assert unplaced.verdict == "inconclusive"
    assert "0 of 0 trials" in unplaced.message and "flagged" not in unplaced.message


def test_the_causes_read_as_english_for_two_windows() -> None:
    check = LoneSpikeCheck(8.0, 2, "ewma:0.3", 20, 20, 20, 5, 10_000, 100, 5)
    assert "sees the spike in both windows that hold it" in check.message
    assert "in all 3 windows" in replace(check, window=3).message


def test_selection_asks_the_lone_spike_check_at_the_threshold_it_ranks_with(
    plant: dict[str, np.ndarray],
) -> None:
    """Selection's question, for each smoothing, is the check train runs on the model it
    would ship at that smoothing: a mean of 3 carries a spike's score over three readings,
    which the 3-of-5 rule counts as an alert; unsmoothed, the spike is one flag."""
    result = fitted(plant, 1)
    run = injected_run(result, plant["calibration"], seed=0)
    pages = glitch_pages(result, plant["calibration"], run)
    for spec, expected in (("none", False), ("mean:3", True)):
        shipped = check(result.with_smoothing(spec), plant["calibration"])
        assert shipped.ok is not expected
        assert pages(spec) is expected


def test_without_a_calibration_run_smoothings_are_weighed_at_the_shipped_threshold(
    plant: dict[str, np.ndarray],
) -> None:
    """A training file whose calibration tail is too short for the quantile ships a
    threshold from out-of-time errors: a smoothing is weighed, and asked whether a glitch
    pages, at that threshold, not the tail's."""
    values = plant["train"][:2400]
    result = train(values, [f"s{i}" for i in range(N_SENSORS)], TrainConfig(family="dpca"))
    tail = values[slice(*result.splits["calibration"])]
    run = replace(injected_run(result, tail, seed=0), reference=out_of_time_scores(result, values))
    pages = glitch_pages(result, tail, run)
    smoothings = ("none", "mean:3", "ewma:0.3", "ewma:0.1")
    for spec in smoothings:
        shipped = calibrate_out_of_time(result.with_smoothing(spec), values)
        assert shipped.metrics["out_of_time"]["applied"]
        verdict = check(shipped, tail).ok
        assert pages(spec) is (None if verdict is None else not verdict), spec
    _, chosen = choose_smoothing(result, tail, smoothings, training_values=values)
    expected = weigh_smoothings(run, result.config, smoothings, 0.0, pages=pages)
    assert chosen is not None
    assert (chosen.config.smoothing, chosen.detection) == (
        expected.config.smoothing,
        expected.detection,
    )
