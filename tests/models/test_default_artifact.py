"""The bundled model ``models/synthetic-plant/1``: it loads, matches the plant, and separates
injected faults from normal readings of a run it never saw."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import mannwhitneyu

from models.synthetic import AnomalyEvent, generate_plant, inject_anomalies, inject_event
from models.train import score_readings
from service.scoring.artifact import EXPORT_FILE, Artifact, load_artifact

DEFAULT = Path(__file__).parents[2] / "models" / "synthetic-plant" / "1"
UNSEEN_SEED = 404  # neither the training (1), calibration (2) nor the documented test run (3)


@pytest.fixture(scope="module")
def artifact() -> Artifact:
    return load_artifact(DEFAULT)


@pytest.fixture(scope="module")
def normal() -> np.ndarray:
    return generate_plant(6000, seed=UNSEEN_SEED).values


def reading_scores(artifact: Artifact, values: np.ndarray) -> np.ndarray:
    return score_readings(artifact.module, values, artifact.manifest.window).mean(axis=1)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of an anomalous reading > score of a normal one)."""
    u = mannwhitneyu(positive, negative, alternative="greater").statistic
    return float(u) / (len(positive) * len(negative))


def test_manifest_describes_the_plant(artifact: Artifact) -> None:
    manifest = artifact.manifest
    assert (manifest.name, manifest.version, manifest.window) == ("synthetic-plant", "1", 1)
    assert manifest.sensors == generate_plant(1, seed=0).sensors
    assert manifest.threshold.quantile == 0.99
    assert manifest.threshold.n_calibration == 10_000
    assert manifest.metrics["threshold_warning"] is None
    assert EXPORT_FILE in manifest.files
    assert sum(path.stat().st_size for path in DEFAULT.iterdir()) < 2_000_000


def test_false_alarms_on_an_unseen_normal_run(artifact: Artifact, normal: np.ndarray) -> None:
    rate = float((reading_scores(artifact, normal) > artifact.manifest.threshold.value).mean())
    assert rate < 0.03  # 1% nominal; another run of the plant varies a little


def test_sustained_faults_are_separated(artifact: Artifact, normal: np.ndarray) -> None:
    injected = inject_anomalies(normal, seed=UNSEEN_SEED)
    scores = reading_scores(artifact, injected.values)
    normal_scores = scores[~injected.labels]
    floors = {"step": 0.99, "drift": 0.85, "stuck": 0.7, "correlation": 0.7}
    for kind, floor in floors.items():
        assert auc(scores[injected.kinds == kind], normal_scores) > floor, kind
    threshold = artifact.manifest.threshold.value
    for event in injected.events:  # every sustained fault crosses the threshold at some point
        if event.kind != "spike":
            assert scores[event.start : event.stop].max() > threshold, event


def test_a_spike_blip_crosses_the_threshold_for_one_reading(
    artifact: Artifact, normal: np.ndarray
) -> None:
    spiked = inject_event(normal, AnomalyEvent("spike", 3000, 3001, 7, 6.0))
    before, after = reading_scores(artifact, normal), reading_scores(artifact, spiked)
    assert after[3000] > 2 * artifact.manifest.threshold.value
    assert np.flatnonzero(after != before).tolist() == [3000]  # a window of one reading
    errors = score_readings(artifact.module, spiked[3000:3001], 1)[0]
    assert int(np.argmax(errors)) == 7  # the contribution points at the faulty sensor
