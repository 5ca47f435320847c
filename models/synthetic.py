"""A deterministic synthetic plant and labelled anomaly injection.

The plant: a few latent process drivers (throughput, feed temperature, ...) follow
operating regimes with smooth set-point changes plus slow fluctuations; every sensor is
a linear mix of the drivers, some with a multiplicative interaction (heat duty = flow x
temperature difference), in its own physical units, plus measurement noise. The sensors
are therefore strongly correlated, which is exactly what an autoencoder learns and what
the injected faults break.

The plant's structure (mixing weights, units, regimes) comes from ``plant_seed`` and is
the same for every run; ``seed`` only drives one run's trajectory and noise, so a
calibration run with another seed is another day of the *same* plant.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, get_args

import numpy as np

from models.data import write_readings_csv
from models.readings import Readings

PLANT_SEED = 20_240_601
N_FACTORS = 4
N_REGIMES = 3
SENSOR_KINDS = ("temperature", "pressure", "flow", "level", "vibration")
START_TIME = np.datetime64("2026-01-01T00:00:00", "s")
SAMPLE_PERIOD = np.timedelta64(1, "s")

AnomalyKind = Literal["spike", "step", "drift", "stuck", "correlation"]
ANOMALY_KINDS: tuple[AnomalyKind, ...] = get_args(AnomalyKind)
"""``spike``: a one-reading blip (a transient a debounced alert should ignore);
``step``: a sustained offset (a sustained spike, e.g. a calibration fault);
``drift``: an offset growing linearly (sensor ageing); ``stuck``: the sensor repeats its
last value while the process moves on; ``correlation``: the sensor replays its own readings
from another time, so every value is plausible but it no longer moves with the others."""

REPLAY_LAG = 700
"""How far (in readings) a broken-correlation event reaches for the values it replays: far
enough for the process to be in another state (the plant's load cycle is 250-400 readings
and its drivers decorrelate within ~50)."""

DURATIONS: dict[AnomalyKind, tuple[int, int]] = {
    "spike": (1, 1),
    "step": (30, 120),
    "drift": (120, 300),
    "stuck": (120, 300),
    "correlation": (60, 200),
}
"""Event length range in readings, per kind."""

MAGNITUDES: dict[AnomalyKind, tuple[float, float]] = {
    "spike": (4.0, 8.0),
    "step": (1.5, 4.0),
    "drift": (2.0, 5.0),
    "stuck": (0.0, 0.0),
    "correlation": (0.0, 0.0),
}
"""Size range in standard deviations of the affected sensor (spike/step height, drift's final
offset); stuck and correlation faults have no size of their own."""


@dataclass(frozen=True)
class PlantStructure:
    """What makes the plant this plant: fixed by ``plant_seed``, shared by all runs."""

    mixing: np.ndarray  # (n_sensors, N_FACTORS)
    interaction: np.ndarray  # (n_sensors,) weight on factor0 * factor1
    offsets: np.ndarray  # (n_sensors,) physical level
    gains: np.ndarray  # (n_sensors,) physical units per unit of signal
    noise: np.ndarray  # (n_sensors,) measurement noise, in signal units
    setpoints: np.ndarray  # (N_REGIMES, N_FACTORS)
    cycle_amplitude: np.ndarray  # (N_FACTORS,) load cycle carried by each driver
    cycle_period: float  # readings
    sensors: list[str]


def plant_structure(n_sensors: int = 50, *, plant_seed: int = PLANT_SEED) -> PlantStructure:
    if n_sensors < 2:
        raise ValueError(f"a plant needs at least 2 sensors, got {n_sensors}")
    rng = np.random.default_rng(plant_seed)
    mixing = rng.normal(size=(n_sensors, N_FACTORS))
    # Each sensor is dominated by one driver, as real instruments are.
    dominant = np.arange(n_sensors) % N_FACTORS
    mixing[np.arange(n_sensors), dominant] += 2.0 * rng.choice([-1.0, 1.0], size=n_sensors)
    mixing /= np.linalg.norm(mixing, axis=1, keepdims=True)
    interaction = np.where(rng.random(n_sensors) < 1 / 3, rng.uniform(0.3, 0.6, n_sensors), 0.0)
    offsets = rng.uniform(10.0, 500.0, n_sensors)
    gains = rng.uniform(1.0, 50.0, n_sensors)
    noise = rng.uniform(0.02, 0.08, n_sensors)
    setpoints = rng.normal(scale=1.0, size=(N_REGIMES, N_FACTORS))
    cycle_amplitude = rng.uniform(0.3, 0.8, N_FACTORS) * rng.choice([-1.0, 1.0], N_FACTORS)
    cycle_period = float(rng.uniform(250, 400))
    width = max(2, len(str(n_sensors)))
    sensors = [f"{SENSOR_KINDS[i % len(SENSOR_KINDS)]}_{i + 1:0{width}d}" for i in range(n_sensors)]
    return PlantStructure(
        mixing=mixing,
        interaction=interaction,
        offsets=offsets,
        gains=gains,
        noise=noise,
        setpoints=setpoints,
        cycle_amplitude=cycle_amplitude,
        cycle_period=cycle_period,
        sensors=sensors,
    )


def generate_plant(
    n_readings: int, *, seed: int, n_sensors: int = 50, plant_seed: int = PLANT_SEED
) -> Readings:
    """``n_readings`` normal readings (one per second) of one run of the plant."""
    if n_readings < 1:
        raise ValueError(f"n_readings must be positive, got {n_readings}")
    plant = plant_structure(n_sensors, plant_seed=plant_seed)
    rng = np.random.default_rng(seed)

    # Operating regimes: hold a regime for 400-1500 readings, then move to another one.
    regime = np.empty(n_readings, dtype=np.int64)
    t, current = 0, int(rng.integers(N_REGIMES))
    while t < n_readings:
        hold = int(rng.integers(400, 1500))
        regime[t : t + hold] = current
        t += hold
        current = (current + int(rng.integers(1, N_REGIMES))) % N_REGIMES
    target = plant.setpoints[regime]

    # Set-point changes pass through a first-order lag (time constant ~50 readings); the
    # drivers also wander around their set-points (AR(1), stationary sd 0.4) and follow a
    # load cycle, so the process keeps moving within a regime (a stuck sensor shows).
    lag, phi, wander_sd = 1 / 50, 0.98, 0.4
    innovations = rng.normal(scale=wander_sd * np.sqrt(1 - phi**2), size=(n_readings, N_FACTORS))
    factors = np.empty((n_readings, N_FACTORS))
    level = target[0].copy()
    wander = rng.normal(scale=wander_sd, size=N_FACTORS)
    for i in range(n_readings):
        level += lag * (target[i] - level)
        wander = phi * wander + innovations[i]
        factors[i] = level + wander
    phase = rng.uniform(0, 2 * np.pi)
    cycle = np.sin(2 * np.pi * np.arange(n_readings) / plant.cycle_period + phase)
    factors += np.outer(cycle, plant.cycle_amplitude)

    signal = factors @ plant.mixing.T + plant.interaction * (factors[:, :1] * factors[:, 1:2])
    signal += rng.normal(size=signal.shape) * plant.noise
    values = plant.offsets + plant.gains * signal
    timestamps = START_TIME + SAMPLE_PERIOD * np.arange(n_readings)
    return Readings(
        values=values,
        sensors=list(plant.sensors),
        timestamps=timestamps,
        source=f"synthetic plant (plant_seed={plant_seed}, seed={seed}, {n_readings} readings)",
    )


@dataclass(frozen=True)
class AnomalyEvent:
    kind: AnomalyKind
    start: int
    stop: int  # exclusive
    sensor: int
    magnitude: float  # in standard deviations of the sensor (0 for stuck/correlation)


@dataclass(frozen=True)
class InjectedAnomalies:
    """Readings with faults injected, and per-reading ground truth."""

    values: np.ndarray  # (n, d) float64
    labels: np.ndarray  # (n,) bool: True inside an event
    kinds: np.ndarray  # (n,) str: the event's kind, "" for normal readings
    affected_sensor: np.ndarray  # (n,) int: the faulty sensor's column, -1 for normal readings
    events: list[AnomalyEvent] = field(default_factory=list)


def inject_event(
    values: np.ndarray,
    event: AnomalyEvent,
    *,
    sensor_std: np.ndarray | None = None,
) -> np.ndarray:
    """A copy of ``values`` with one fault applied (``sensor_std`` defaults to the column std)."""
    if not 0 <= event.start < event.stop <= len(values):
        raise ValueError(f"event {event} does not fit in {len(values)} readings")
    if not 0 <= event.sensor < values.shape[1]:
        raise ValueError(f"event sensor {event.sensor} is not a column of {values.shape[1]}")
    out = np.array(values, dtype=np.float64, copy=True)
    std = values.std(axis=0) if sensor_std is None else sensor_std
    scale = float(std[event.sensor]) if std[event.sensor] > 0 else 1.0
    span = slice(event.start, event.stop)
    column = out[span, event.sensor]
    length = event.stop - event.start
    if event.kind in ("spike", "step"):
        column += event.magnitude * scale
    elif event.kind == "drift":
        column += event.magnitude * scale * np.arange(1, length + 1) / length
    elif event.kind == "stuck":
        held = values[event.start - 1, event.sensor] if event.start > 0 else column[0]
        column[:] = held
    elif event.kind == "correlation":
        # The sensor replays its own readings from another time: every value is one it
        # really takes, but it no longer moves with the sensors it is correlated with.
        column[:] = values[_replay_rows(event, len(values)), event.sensor]
    else:
        raise ValueError(f"unknown anomaly kind {event.kind!r}; known: {ANOMALY_KINDS}")
    out[span, event.sensor] = column
    return out


def _replay_rows(event: AnomalyEvent, n_readings: int) -> np.ndarray:
    """Rows a broken-correlation event replays: ``REPLAY_LAG`` earlier, or later near the start."""
    length = event.stop - event.start
    lag = REPLAY_LAG if event.start >= REPLAY_LAG else -REPLAY_LAG
    start = event.start - lag
    if start < 0 or start + length > n_readings:
        raise ValueError(f"too few readings around {event} to replay {REPLAY_LAG} readings away")
    return np.arange(start, start + length)


def inject_anomalies(
    values: np.ndarray,
    *,
    seed: int,
    kinds: tuple[AnomalyKind, ...] = ANOMALY_KINDS,
    gap: tuple[int, int] = (200, 600),
    first_start: int = 100,
) -> InjectedAnomalies:
    """Fault events of the given kinds, in turn, separated by ``gap`` normal readings.

    Events never overlap and every kind gets the same share of events, so per-kind
    detection figures are comparable.
    """
    unknown = set(kinds) - set(ANOMALY_KINDS)
    if unknown or not kinds:
        raise ValueError(f"kinds must be a non-empty subset of {ANOMALY_KINDS}, got {kinds}")
    rng = np.random.default_rng(seed)
    n, d = values.shape
    sensor_std = values.std(axis=0)
    labels = np.zeros(n, dtype=bool)
    kind_of = np.full(n, "", dtype=object)
    affected = np.full(n, -1, dtype=np.int64)
    events: list[AnomalyEvent] = []
    out = np.array(values, dtype=np.float64, copy=True)
    t = first_start
    index = 0
    while True:
        kind = kinds[index % len(kinds)]
        low, high = DURATIONS[kind]
        length = int(rng.integers(low, high + 1))
        if t + length > n:
            break
        mag_low, mag_high = MAGNITUDES[kind]
        magnitude = float(rng.uniform(mag_low, mag_high)) * float(rng.choice([-1.0, 1.0]))
        if kind in ("stuck", "correlation"):
            magnitude = 0.0
        event = AnomalyEvent(kind, t, t + length, int(rng.integers(d)), magnitude)
        out = inject_event(out, event, sensor_std=sensor_std)
        labels[event.start : event.stop] = True
        kind_of[event.start : event.stop] = kind
        affected[event.start : event.stop] = event.sensor
        events.append(event)
        t = event.stop + int(rng.integers(gap[0], gap[1] + 1))
        index += 1
    return InjectedAnomalies(out, labels, kind_of.astype(str), affected, events)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="write synthetic plant readings (optionally with labelled faults) to CSV",
        description="Write readings of the synthetic plant to CSV, with ground-truth columns "
        "anomaly (0/1), anomaly_kind and anomaly_sensor.",
    )
    parser.add_argument("--out", type=Path, required=True, help="CSV file to write")
    parser.add_argument(
        "--readings", type=int, default=10_000, help="number of readings (default: 10000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of this run (default: 0)")
    parser.add_argument("--sensors", type=int, default=50, help="number of sensors (default: 50)")
    parser.add_argument(
        "--anomalies", action="store_true", help="inject labelled faults of every kind"
    )
    parser.add_argument(
        "--kinds",
        nargs="+",
        choices=ANOMALY_KINDS,
        default=list(ANOMALY_KINDS),
        help="fault kinds to inject with --anomalies (default: all)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    readings = generate_plant(args.readings, seed=args.seed, n_sensors=args.sensors)
    n = readings.n_readings
    labels = np.zeros(n, dtype=np.float64)
    kinds = np.full(n, "", dtype=str)
    sensors = np.full(n, "", dtype=object)
    values = readings.values
    n_events = 0
    if args.anomalies:
        injected = inject_anomalies(values, seed=args.seed + 1, kinds=tuple(args.kinds))
        values = injected.values
        labels = injected.labels.astype(np.float64)
        kinds = injected.kinds
        sensors[injected.labels] = [
            readings.sensors[i] for i in injected.affected_sensor[injected.labels]
        ]
        n_events = len(injected.events)
    out = Readings(
        values=values,
        sensors=readings.sensors,
        timestamps=readings.timestamps,
        source=readings.source,
        labels={"anomaly": labels, "anomaly_kind": kinds, "anomaly_sensor": sensors.astype(str)},
    )
    write_readings_csv(args.out, out)
    print(
        f"wrote {n} readings x {readings.n_sensors} sensors to {args.out}"
        + (
            f" with {n_events} fault events ({int(labels.sum())} anomalous readings)"
            if n_events
            else ""
        ),
        file=sys.stderr,
    )
    return 0
