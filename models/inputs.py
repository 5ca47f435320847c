"""The readings a model takes: standardised per sensor, and within what float32 (the model's
and the service's input type) can hold and resolve."""

from __future__ import annotations

import numpy as np

from service.scoring.glitches import despiked, jumps


def fit_scaler(values: np.ndarray, sensors: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Mean and std per sensor; a constant sensor gets scale 1 (no division by zero) and is
    returned by name so it can be reported."""
    mean = values.mean(axis=0)
    std = values.std(axis=0)
    # Relative test: float noise on a large constant level must still count as constant.
    constant = std <= 1e-12 * np.maximum(1.0, np.abs(mean))
    scale = np.where(constant, 1.0, std)
    return mean, scale, [name for name, flag in zip(sensors, constant, strict=True) if flag]


class ConstantSensorMoves(ValueError):
    """A sensor constant in the training split moves in the calibration readings: scaled by
    1, each of its moves there scores like a fault, and the threshold set on them would be
    set by that sensor alone."""


def check_constant_sensors(
    mean: np.ndarray,
    constant: list[str],
    calibration_values: np.ndarray,
    sensors: list[str],
    calibration_source: str,
) -> None:
    if not constant:
        return
    index = [sensors.index(name) for name in constant]
    level = mean[index]
    columns = calibration_values[:, index]
    # Within float32's resolution (the model's and the service's input type) is no move.
    resolution = 2 * np.finfo(np.float32).eps * np.maximum(1.0, np.abs(level))
    moved = np.abs(columns - level) > resolution
    if not moved.any():
        return
    named = []
    for j in np.flatnonzero(moved.any(axis=0)).tolist():
        column = columns[:, j]
        named.append(
            f"{constant[j]} (constant {level[j]:.6g} in training; {int(moved[:, j].sum())} of "
            f"{len(column)} calibration readings differ, from {column.min():.9g} to "
            f"{column.max():.9g})"
        )
    raise ConstantSensorMoves(
        f"sensor(s) {'; '.join(named)} do not move in the training readings but do in the "
        f"calibration readings ({calibration_source}). A constant sensor is scaled by 1 and "
        "only flags a change, so the threshold would be set by these changes and the model "
        "would miss faults below them. Train on readings where the sensor varies as in normal "
        "operation, or leave the sensor out of every file."
    )


FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_RESOLUTION_SHARE = 0.01
"""A sensor whose float32 steps exceed this share of its standard deviation is warned about."""


class BeyondFloat32(ValueError):
    """A value the model and the service (both float32) would read as infinity. ``data`` says
    whether the training or the calibration readings hold it."""

    def __init__(self, data: str, detail: str) -> None:
        super().__init__(f"{data} {detail}")
        self.data = data
        self.detail = detail


def check_float32_range(values: np.ndarray, sensors: list[str], data: str) -> None:
    beyond = np.abs(values) > FLOAT32_MAX
    if beyond.any():
        row, column = (int(i) for i in np.argwhere(beyond)[0])
        raise BeyondFloat32(
            data,
            f"reading {row}, sensor {sensors[column]}: {values[row, column]:g} is beyond the "
            f"float32 range (+-{FLOAT32_MAX:.3g}) the model and the service read; "
            f"{int(beyond.sum())} value(s) are",
        )


def float32_resolution_warnings(
    train_values: np.ndarray, scale: np.ndarray, sensors: list[str], constant: list[str]
) -> list[str]:
    """Sensors whose variation float32, the model's input type, cannot resolve.

    Training standardises in float64, but the artifact and the service see float32 readings:
    around 1e7 float32 steps by 1, so a sensor sitting there with a std of 0.1 reaches the
    model as a handful of values and its validation loss does not show it.
    """
    largest = np.abs(train_values).max(axis=0).astype(np.float32)
    steps = np.spacing(largest).astype(np.float64)
    coarse = (steps > FLOAT32_RESOLUTION_SHARE * scale) & ~np.isin(sensors, constant)
    return [
        f"sensor {name}: float32, the model's input type, steps by {step:.3g} around "
        f"{peak:.6g} while the sensor varies by {std:.3g} (std); send it as a deviation from a "
        "fixed reference or in smaller units"
        for name, step, peak, std, flag in zip(sensors, steps, largest, scale, coarse, strict=True)
        if flag
    ]


JUMP_FLOOR = 3.0
"""Training standard deviations a glitch must jump by at least, whatever the training run's
own largest jump: a smooth training run would otherwise set a limit that normal noise
crosses."""


def jump_limits(train_values: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The glitch guard's per-sensor limits (service/scoring/glitches.py), in raw units: the
    largest jump of the training split away from both neighbours in the same direction, and
    at least ``JUMP_FLOOR`` training standard deviations. No training reading exceeds its
    limit, so the guard changes nothing the model learned from."""
    values = np.asarray(train_values, dtype=np.float64)
    floor = JUMP_FLOOR * np.asarray(scale, dtype=np.float64)
    if len(values) < 3:
        return floor
    limits: np.ndarray = np.maximum(jumps(values).max(axis=0), floor)
    return limits


REWRITTEN_WARNING = 0.001
"""Share of a normal calibration run the glitch guard may rewrite before ``train`` warns: a
normal run holds no glitches, so what the guard rewrites there is the process moving."""


def rewritten_readings(values: np.ndarray, limits: np.ndarray) -> int:
    """Readings of ``values`` (a run in time order) with a value the glitch guard rewrites."""
    run = np.asarray(values, dtype=np.float32)
    changed = despiked(run, np.asarray(limits, dtype=np.float32)) != run
    return int(changed.any(axis=1).sum())
