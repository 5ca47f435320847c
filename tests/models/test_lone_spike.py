"""What one glitch does to the alert, on models fitted here to a synthetic plant."""

from __future__ import annotations

import numpy as np
import pytest

from models.lone_spike import HORIZON, LoneSpikeCheck, lone_spike_check
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


def check(result: TrainResult, normal: np.ndarray, **kwargs: float) -> LoneSpikeCheck:
    return lone_spike_check(
        result,
        normal,
        threshold=result.threshold.value,
        scale=result.scaler_scale,
        **kwargs,  # type: ignore[arg-type]
    )


def test_one_reading_model_flags_a_spike_without_alerting(plant: dict[str, np.ndarray]) -> None:
    result = check(fitted(plant, 1), plant["normal"])
    assert result.trials >= 15
    assert result.flagged == result.trials
    assert result.alerted == 0
    assert result.ok and result.message.startswith("ok:")


def test_windowed_model_holds_a_spike_into_an_alert(plant: dict[str, np.ndarray]) -> None:
    result = check(fitted(plant, 8), plant["normal"])
    assert result.trials >= 15
    assert result.alerted >= result.trials // 4  # one-reading DPCA: none (above)
    assert not result.ok
    assert result.message.startswith("WARNING:")
    assert f"in {result.alerted} of {result.trials} trials" in result.message
    assert "all 8 windows" in result.message


def test_a_spike_too_small_to_flag_raises_nothing(plant: dict[str, np.ndarray]) -> None:
    result = check(fitted(plant, 8), plant["normal"], size=0.0)
    assert result.flagged == 0 and result.alerted == 0


def test_positions_where_the_clean_run_is_in_alert_are_not_trials(
    plant: dict[str, np.ndarray],
) -> None:
    """With a threshold every reading exceeds, the clean run is in alert throughout: no spike
    could start one, so nothing is claimed."""
    result = fitted(plant, 1)
    skipped = lone_spike_check(result, plant["normal"], threshold=1e-12, scale=result.scaler_scale)
    assert skipped.trials == 0
    assert not skipped.ok and skipped.message.startswith("not checked")


def test_a_run_too_short_for_the_horizon_is_not_checked(plant: dict[str, np.ndarray]) -> None:
    result = check(fitted(plant, 1), plant["normal"][: 2 * HORIZON])
    assert result.trials == 0 and "not checked" in result.message


def test_one_reading_model_names_the_smoothing_when_it_alerts() -> None:
    message = LoneSpikeCheck(8.0, 20, 20, 3, window=1).message
    assert "the smoothing carries the spike" in message
