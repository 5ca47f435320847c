"""Faults injected into normal readings: how model selection sees detection without ever
looking at labelled fault data.

Each kind changes one sensor (two for a broken correlation) of a copy of a normal run from
an onset to the end, in units of that sensor's training standard deviation, so the same
recipe means the same thing on any plant. The kinds cover what sensors and processes do
when they go wrong: a spike, a bias (step), a drift, a stuck (flat-lined) value, more
noise, a broken correlation with the rest of the plant, and changed dynamics.

>>> import numpy as np
>>> z = np.zeros((10, 2))
>>> inject(z, Fault("bias", sensor=1, onset=5, size=2.0), np.random.default_rng(0))[:, 1]
array([0., 0., 0., 0., 0., 2., 2., 2., 2., 2.])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KINDS = ("spike", "bias", "drift", "stuck", "noise", "correlation", "dynamics")
SIZES: dict[str, float] = {
    "spike": 5.0,
    "bias": 1.5,
    "drift": 3.0,
    "stuck": 0.0,
    "noise": 1.0,
    "correlation": 0.0,
    "dynamics": 0.0,
}
"""Size per kind, in training standard deviations (spike height, step, drift reached at the
end, added noise std); kinds whose size is 0 change the shape, not the level. Small on
purpose: faults every candidate catches cannot rank the candidates."""
SLOWED_OVER = 5
"""Readings the dynamics fault averages over (slower dynamics, the same spread)."""
MIN_INJECTABLE = 2 * SLOWED_OVER - 1
"""Readings a run needs for every fault: they start halfway (reading ``n // 2``), and the
slowest needs ``SLOWED_OVER`` readings from its onset on."""
SPIKE_EVERY = 10


@dataclass(frozen=True)
class Fault:
    kind: str
    sensor: int
    onset: int
    size: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {KINDS}, got {self.kind!r}")


def inject(z: np.ndarray, fault: Fault, rng: np.random.Generator) -> np.ndarray:
    """A copy of standardised readings ``z`` (n, sensors) with ``fault`` from its onset."""
    out = np.array(z, dtype=np.float64)
    n, n_sensors = out.shape
    j, start = fault.sensor, fault.onset
    if not 0 <= j < n_sensors or not 0 < start < n:
        raise ValueError(f"sensor {j} or onset {start} outside {out.shape}")
    segment = out[start:, j]
    length = len(segment)
    if fault.kind == "spike":
        segment[::SPIKE_EVERY] += fault.size * rng.choice((-1.0, 1.0), len(segment[::SPIKE_EVERY]))
    elif fault.kind == "bias":
        segment += fault.size
    elif fault.kind == "drift":
        segment += np.linspace(0.0, fault.size, length)
    elif fault.kind == "stuck":
        segment[:] = out[start - 1, j]
    elif fault.kind == "noise":
        segment += fault.size * rng.standard_normal(length)
    elif fault.kind == "correlation":
        # The sensor replays its own earlier readings: each value is plausible on its own,
        # but no longer moves with the rest of the plant.
        source = out[:start, j]
        segment[:] = np.resize(source[::-1], length)
    else:  # dynamics: slower (a moving average), rescaled to the same spread
        smoothed = np.convolve(segment, np.ones(SLOWED_OVER) / SLOWED_OVER, mode="same")
        spread = smoothed.std()
        segment[:] = (smoothed - smoothed.mean()) / (spread if spread > 0 else 1.0)
        segment[:] = segment * z[start:, j].std() + z[start:, j].mean()
    return out


def fault_plan(n_readings: int, n_sensors: int, *, per_kind: int = 4, seed: int = 0) -> list[Fault]:
    """``per_kind`` faults of every kind on sensors drawn without bias, onset at the middle."""
    rng = np.random.default_rng(seed)
    onset = n_readings // 2
    return [
        Fault(kind, int(rng.integers(n_sensors)), onset, SIZES[kind])
        for kind in KINDS
        for _ in range(per_kind)
    ]
