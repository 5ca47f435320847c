"""Injected faults (models/inject.py): each kind changes one sensor from its onset only."""

from __future__ import annotations

import numpy as np
import pytest

from models.inject import KINDS, SIZES, Fault, fault_plan, inject


@pytest.fixture
def normal() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.cumsum(rng.normal(size=(200, 4)), axis=0) * 0.1 + rng.normal(size=(200, 4))


@pytest.mark.parametrize("kind", KINDS)
def test_a_fault_changes_its_sensor_after_the_onset_and_nothing_else(
    normal: np.ndarray, kind: str
) -> None:
    fault = Fault(kind, sensor=2, onset=100, size=SIZES[kind] or 1.0)
    faulty = inject(normal, fault, np.random.default_rng(1))
    np.testing.assert_array_equal(faulty[:100], normal[:100])
    np.testing.assert_array_equal(np.delete(faulty, 2, axis=1), np.delete(normal, 2, axis=1))
    assert not np.array_equal(faulty[100:, 2], normal[100:, 2])
    assert faulty is not normal and np.isfinite(faulty).all()


def test_shape_faults_keep_the_level_and_level_faults_move_it(normal: np.ndarray) -> None:
    rng = np.random.default_rng(1)
    after = normal[100:, 1]
    for kind in ("correlation", "dynamics"):
        changed = inject(normal, Fault(kind, 1, 100), rng)[100:, 1]
        assert abs(changed.mean() - after.mean()) < 0.5 * after.std() + abs(
            normal[:100, 1].mean() - after.mean()
        )
    bias = inject(normal, Fault("bias", 1, 100, 2.0), rng)[100:, 1]
    np.testing.assert_allclose(bias - after, 2.0)
    stuck = inject(normal, Fault("stuck", 1, 100), rng)[100:, 1]
    assert (stuck == normal[99, 1]).all()


def test_the_plan_covers_every_kind_and_is_reproducible() -> None:
    plan = fault_plan(300, 5, per_kind=3, seed=4)
    assert [f.kind for f in plan] == [k for k in KINDS for _ in range(3)]
    assert all(f.onset == 150 and 0 <= f.sensor < 5 for f in plan)
    assert plan == fault_plan(300, 5, per_kind=3, seed=4)


def test_unknown_kinds_and_onsets_outside_the_run_are_refused(normal: np.ndarray) -> None:
    with pytest.raises(ValueError, match="fault kind"):
        Fault("meltdown", 0, 10)
    with pytest.raises(ValueError, match="outside"):
        inject(normal, Fault("bias", 0, 500, 1.0), np.random.default_rng(0))
