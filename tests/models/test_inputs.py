"""Standardisation and float32's limits, on constructed readings."""

from __future__ import annotations

import numpy as np
import pytest

from models.inputs import (
    JUMP_FLOOR,
    BeyondFloat32,
    check_float32_range,
    fit_scaler,
    float32_resolution_warnings,
    jump_limits,
)
from service.scoring.glitches import despiked


def test_fit_scaler_treats_float_noise_on_a_constant_as_constant() -> None:
    values = np.full((10, 2), 1e6)
    values[:, 1] = np.arange(10)
    values[3, 0] += 1e-9
    _, scale, constant = fit_scaler(values, ["a", "b"])
    assert constant == ["a"] and scale[0] == 1.0


def test_a_value_float32_reads_as_infinity_is_refused_with_where_it_is() -> None:
    values = np.zeros((3, 2))
    values[2, 1] = 1e39
    with pytest.raises(BeyondFloat32) as caught:
        check_float32_range(values, ["a", "b"], "calibration")
    assert caught.value.data == "calibration"
    assert caught.value.detail.startswith("reading 2, sensor b: 1e+39 is beyond the float32")
    check_float32_range(values[:2], ["a", "b"], "training")  # nothing beyond: no error


def test_a_sensor_float32_cannot_resolve_is_named_unless_constant() -> None:
    values = np.column_stack([1e7 + 0.1 * np.arange(10), np.arange(10.0), np.full(10, 1e7)])
    _, scale, constant = fit_scaler(values, ["coarse", "fine", "flat"])
    warnings = float32_resolution_warnings(values, scale, ["coarse", "fine", "flat"], constant)
    assert len(warnings) == 1 and warnings[0].startswith("sensor coarse: float32")


def test_jump_limits_pass_every_training_reading_and_are_at_least_three_sds() -> None:
    rng = np.random.default_rng(0)
    values = rng.normal(size=(2000, 3)) * np.array([1.0, 10.0, 0.1])
    values[700, 0] += 9.0  # the largest jump of the first sensor, away from both neighbours
    scale = values.std(axis=0)
    limits = jump_limits(values, scale)
    assert limits[0] >= 9.0 and limits[0] < 12.0
    np.testing.assert_array_less(JUMP_FLOOR * scale * (1 - 1e-12), limits)
    np.testing.assert_array_equal(despiked(values, limits), values)  # training is untouched
    smooth = np.cumsum(np.full((100, 2), 0.01), axis=0)  # never jumps back: the floor only
    np.testing.assert_allclose(jump_limits(smooth, np.ones(2)), [JUMP_FLOOR, JUMP_FLOOR])
