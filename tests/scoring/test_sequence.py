"""score_sequence (readings carried by feedback, scored as one run): a model that declares its
smoothing flags the run smoothed as a new stream's scores are, from the declared start in the
units of the threshold given."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from conftest import build_test_artifact

from service.scoring.artifact import load_artifact
from service.scoring.registry import LoadedModel
from service.scoring.sequence import score_sequence
from service.scoring.smoothing import make_smoother

EWMA: dict[str, Any] = {"method": "ewma", "window": 1, "alpha": 0.5}
# Error of a reading [a, 0, 0, 0] (threshold-free): a² / 4.
SPIKE = [math.sqrt(12.0), 0.0, 0.0, 0.0]  # error 3
QUIET = [0.0, 0.0, 0.0, 0.0]


def loaded(tmp_path: Path, smoothing: dict[str, Any]) -> LoadedModel:
    folder = build_test_artifact(tmp_path / "m", smoothing=smoothing, threshold=2.0)
    return LoadedModel.from_artifact(load_artifact(folder))


def test_a_sequence_starts_where_the_model_declares_in_the_thresholds_units(
    tmp_path: Path,
) -> None:
    model = loaded(tmp_path, {**EWMA, "start": 0.8})
    assert model.manifest.smoothing is not None
    values = np.array([SPIKE, SPIKE, QUIET], dtype=np.float32)
    # The threshold in force is given (here 4, not the manifest's 2): scores 0.75, 0.75, 0.
    scored = score_sequence(model, values, 4.0, 1, model.manifest.smoothing)
    assert scored.decisions.scores.tolist() == [0.75, 0.75, 0.0]
    # At threshold 2 the scores are 1.5, 1.5, 0; from 0.4 (0.8 / 2) the EWMA is 0.95, 1.225,
    # 0.6125: the first high score does not flag on its own. From 0.8 (the start left in raw
    # units) or from the first score, it would.
    scored = score_sequence(model, values, 2.0, 1, model.manifest.smoothing)
    assert scored.decisions.anomalies.tolist() == [False, True, False]
    smoother = make_smoother(model.manifest.smoothing, 2.0)
    smoothed = [smoother.update(x) for x in scored.decisions.scores]
    np.testing.assert_allclose(smoothed, [0.95, 1.225, 0.6125])


def test_without_a_declared_start_a_sequence_starts_at_its_first_score(tmp_path: Path) -> None:
    model = loaded(tmp_path, EWMA)
    assert model.manifest.smoothing is not None
    values = np.array([SPIKE, SPIKE, QUIET], dtype=np.float32)
    scored = score_sequence(model, values, 2.0, 1, model.manifest.smoothing)
    assert scored.decisions.anomalies.tolist() == [True, True, False]  # 1.5, 1.5, 0.75
