"""The synthetic plant and its labelled faults."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.__main__ import main
from models.synthetic import (
    ANOMALY_KINDS,
    REPLAY_LAG,
    AnomalyEvent,
    generate_plant,
    inject_anomalies,
    inject_event,
)


@pytest.fixture(scope="module")
def normal() -> np.ndarray:
    return generate_plant(4000, seed=5).values


def test_same_seed_same_run_other_seed_same_plant() -> None:
    a, b = generate_plant(500, seed=1), generate_plant(500, seed=1)
    np.testing.assert_array_equal(a.values, b.values)
    other = generate_plant(500, seed=2)
    assert other.sensors == a.sensors and len(a.sensors) == 50
    assert not np.allclose(other.values, a.values)
    # The same plant: sensor levels agree within a few standard deviations.
    assert np.all(np.abs(other.values.mean(0) - a.values.mean(0)) < 4 * a.values.std(0))
    assert a.timestamps is not None and np.all(np.diff(a.timestamps) > np.timedelta64(0))


def test_sensors_are_driven_by_few_factors(normal: np.ndarray) -> None:
    z = (normal - normal.mean(0)) / normal.std(0)
    explained = np.linalg.svd(z, compute_uv=False) ** 2
    explained /= explained.sum()
    assert explained[:5].sum() > 0.9  # 4 drivers and one interaction
    assert explained[:2].sum() < 0.8  # but not trivially one-dimensional


def test_regimes_move_the_process(normal: np.ndarray) -> None:
    blocks = normal[: 4000 // 500 * 500].reshape(-1, 500, normal.shape[1]).mean(axis=1)
    assert np.ptp(blocks, axis=0).max() > 2 * normal.std(0).min()


def test_injected_events_are_labelled_and_confined(normal: np.ndarray) -> None:
    injected = inject_anomalies(normal, seed=9)
    assert {e.kind for e in injected.events} == set(ANOMALY_KINDS)
    changed = np.any(injected.values != normal, axis=1)
    assert not np.any(changed & ~injected.labels)  # nothing changes outside an event
    for event in injected.events:
        span = slice(event.start, event.stop)
        assert injected.labels[span].all()
        assert (injected.kinds[span] == event.kind).all()
        assert (injected.affected_sensor[span] == event.sensor).all()
        others = np.delete(np.arange(normal.shape[1]), event.sensor)
        np.testing.assert_array_equal(injected.values[span][:, others], normal[span][:, others])
    assert (injected.kinds[~injected.labels] == "").all()
    assert (injected.affected_sensor[~injected.labels] == -1).all()
    assert 0.05 < injected.labels.mean() < 0.5
    starts = [e.start for e in injected.events]
    stops = [e.stop for e in injected.events]
    assert all(stop < start for stop, start in zip(stops, starts[1:], strict=False))


def test_each_kind_does_what_it_says(normal: np.ndarray) -> None:
    std = normal.std(axis=0)
    spike = inject_event(normal, AnomalyEvent("spike", 100, 101, 3, 6.0))
    assert spike[100, 3] - normal[100, 3] == pytest.approx(6.0 * std[3])
    step = inject_event(normal, AnomalyEvent("step", 100, 200, 3, -2.0))
    np.testing.assert_allclose(step[100:200, 3] - normal[100:200, 3], -2.0 * std[3])
    drift = inject_event(normal, AnomalyEvent("drift", 100, 200, 3, 4.0))
    offset = drift[100:200, 3] - normal[100:200, 3]
    assert np.all(np.diff(offset) > 0) and offset[-1] == pytest.approx(4.0 * std[3])
    stuck = inject_event(normal, AnomalyEvent("stuck", 100, 200, 3, 0.0))
    assert np.all(stuck[100:200, 3] == normal[99, 3])
    replay = inject_event(normal, AnomalyEvent("correlation", 1000, 1100, 3, 0.0))
    np.testing.assert_array_equal(
        replay[1000:1100, 3], normal[1000 - REPLAY_LAG : 1100 - REPLAY_LAG, 3]
    )
    early = inject_event(normal, AnomalyEvent("correlation", 10, 60, 3, 0.0))
    np.testing.assert_array_equal(early[10:60, 3], normal[10 + REPLAY_LAG : 60 + REPLAY_LAG, 3])


def test_injection_is_deterministic_and_validated(normal: np.ndarray) -> None:
    a = inject_anomalies(normal, seed=1, kinds=("stuck",))
    b = inject_anomalies(normal, seed=1, kinds=("stuck",))
    np.testing.assert_array_equal(a.values, b.values)
    assert {e.kind for e in a.events} == {"stuck"}
    with pytest.raises(ValueError, match="subset"):
        inject_anomalies(normal, seed=1, kinds=("meteor",))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="does not fit"):
        inject_event(normal, AnomalyEvent("spike", 3999, 4001, 0, 1.0))


def test_generate_needs_only_an_output_file(tmp_path: Path) -> None:
    assert main(["generate", "--out", str(tmp_path / "plant.csv"), "--readings", "50"]) == 0
    assert main(["generate", "--out", str(tmp_path / "default.csv")]) == 0
    lines = (tmp_path / "default.csv").read_text().splitlines()
    assert len(lines) == 1 + 10_000  # the header, then the default number of readings
