"""The bundled model ``models/synthetic-plant/2``: it loads, matches the plant, and separates
injected faults from normal readings of a run it never saw."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from models.export import script_module
from models.network import ScoringModule, SensorAutoencoder
from models.synthetic import AnomalyEvent, generate_plant, inject_anomalies, inject_event
from models.windows import GOLDEN_SIZE, golden_windows, score_readings
from service.scoring.artifact import (
    GOLDEN_ATOL,
    GOLDEN_RTOL,
    Artifact,
    ArtifactError,
    load_artifact,
    sha256_file,
    torchscript_deprecation_silenced,
)
from service.scoring.manifest import (
    CONTRACT_FILE,
    EXPORT_FILE,
    MANIFEST_FILE,
    REFERENCE_FILE,
    TORCHSCRIPT_FILE,
)

DEFAULT = Path(__file__).parents[2] / "models" / "synthetic-plant" / "2"
CALIBRATION_SEED, CALIBRATION_READINGS = 2, 20_000  # the run scripts/train-default calibrates on
UNSEEN_SEED = 404  # neither the training (1), calibration (2) nor the documented test run (3)
WINDOW = 20  # what scripts/train-default's selection chose: a convolution over 20 readings


@pytest.fixture(scope="module")
def artifact() -> Artifact:
    return load_artifact(DEFAULT)


@pytest.fixture(scope="module")
def normal() -> np.ndarray:
    return generate_plant(6000, seed=UNSEEN_SEED).values


def reading_scores(artifact: Artifact, values: np.ndarray, *, guarded: bool = True) -> np.ndarray:
    """One score per reading from the model's window onwards, as the service forms the
    windows (the glitch guard included, unless ``guarded`` is False)."""
    limits = artifact.manifest.glitch_limits if guarded else None
    errors = score_readings(artifact.module, values, WINDOW, limits=limits)
    return np.concatenate([np.full(WINDOW - 1, np.nan), errors.mean(axis=1)])


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """P(score of an anomalous reading > score of a normal one)."""
    u = mannwhitneyu(positive, negative, alternative="greater").statistic
    return float(u) / (len(positive) * len(negative))


def test_manifest_describes_the_plant(artifact: Artifact) -> None:
    manifest = artifact.manifest
    assert (manifest.name, manifest.version, manifest.window) == ("synthetic-plant", "2", WINDOW)
    assert manifest.training["family"] == "conv" and manifest.glitch_limits is not None
    assert manifest.smoothing is not None and manifest.smoothing.label() == "none"
    assert manifest.sensors == generate_plant(1, seed=0).sensors
    assert manifest.threshold.quantile == 0.99
    assert manifest.threshold.n_calibration == CALIBRATION_READINGS - WINDOW + 1
    assert manifest.metrics["threshold_warning"] is None
    assert EXPORT_FILE in manifest.files
    assert sum(path.stat().st_size for path in DEFAULT.iterdir()) < 2_000_000


def test_false_alarms_on_an_unseen_normal_run(artifact: Artifact, normal: np.ndarray) -> None:
    scores = reading_scores(artifact, normal)[WINDOW - 1 :]
    rate = float((scores > artifact.manifest.threshold.value).mean())
    assert rate < 0.03  # 1% nominal; another run of the plant varies a little


def test_sustained_faults_are_separated(artifact: Artifact, normal: np.ndarray) -> None:
    injected = inject_anomalies(normal, seed=UNSEEN_SEED)
    scores = reading_scores(artifact, injected.values)
    scored = ~np.isnan(scores)
    normal_scores = scores[scored & ~injected.labels]
    floors = {"step": 0.99, "drift": 0.85, "stuck": 0.7, "correlation": 0.7}
    for kind, floor in floors.items():
        assert auc(scores[scored & (injected.kinds == kind)], normal_scores) > floor, kind
    threshold = artifact.manifest.threshold.value
    for event in injected.events:  # every sustained fault crosses the threshold at some point
        if event.kind != "spike":
            assert scores[event.start : event.stop].max() > threshold, event


def test_a_spike_blip_crosses_the_threshold_for_one_reading(
    artifact: Artifact, normal: np.ndarray
) -> None:
    """The window ending at the blip scores it; the glitch guard puts it back to its
    neighbours' mean in the windows after, which without the guard would all see it."""
    spiked = inject_event(normal, AnomalyEvent("spike", 3000, 3001, 7, 6.0))
    threshold = artifact.manifest.threshold.value
    after = reading_scores(artifact, spiked)
    assert after[3000] > 2 * threshold
    assert (after[3001 : 3000 + WINDOW] < threshold).all()
    unguarded = reading_scores(artifact, spiked, guarded=False)
    assert (unguarded[3000 : 3000 + WINDOW] > threshold).sum() > WINDOW // 2
    assert (reading_scores(artifact, normal)[2990:3040] < threshold).all()
    errors = score_readings(artifact.module, spiked[3001 - WINDOW : 3001], WINDOW)[0]
    assert int(np.argmax(errors)) == 7  # the contribution points at the faulty sensor


def test_the_bundled_artifact_carries_a_golden_sample_of_its_calibration_run(
    artifact: Artifact,
) -> None:
    golden = artifact.manifest.golden
    assert golden is not None
    inputs = np.asarray(golden.inputs)
    assert inputs.shape == (GOLDEN_SIZE, WINDOW, 50)
    calibration = generate_plant(CALIBRATION_READINGS, seed=CALIBRATION_SEED).values
    windows = golden_windows(calibration, WINDOW)
    assert np.allclose(inputs, windows, rtol=1e-6)  # the CSV the model read rounds them
    # load_artifact has scored them again; the recorded errors are the model's own
    with torch.inference_mode():
        errors = artifact.module(torch.as_tensor(inputs, dtype=torch.float32)).numpy()
    assert np.allclose(errors, golden.errors, rtol=GOLDEN_RTOL, atol=GOLDEN_ATOL)


def swapped_model(tmp_path: Path, module: torch.jit.ScriptModule) -> Path:
    """A copy of the bundled artifact whose model.pt is ``module`` carrying the bundled
    contract, its checksum updated in the manifest: only the golden sample can tell."""
    folder = tmp_path / "synthetic-plant" / "2"
    shutil.copytree(DEFAULT, folder)
    extra = {CONTRACT_FILE: ""}
    with torchscript_deprecation_silenced():
        torch.jit.load(str(DEFAULT / TORCHSCRIPT_FILE), _extra_files=extra)  # type: ignore[no-untyped-call]
        torch.jit.save(module, str(folder / TORCHSCRIPT_FILE), _extra_files=extra)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["files"][TORCHSCRIPT_FILE]["sha256"] = sha256_file(folder / TORCHSCRIPT_FILE)
    manifest["files"][TORCHSCRIPT_FILE]["bytes"] = (folder / TORCHSCRIPT_FILE).stat().st_size
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return folder


def test_another_models_file_in_place_of_model_pt_is_refused(
    artifact: Artifact, tmp_path: Path
) -> None:
    manifest = artifact.manifest
    torch.manual_seed(11)
    other = ScoringModule(
        SensorAutoencoder(50 * WINDOW, hidden=[32], latent=8),
        mean=manifest.scaler.mean,
        scale=manifest.scaler.scale,
        window=WINDOW,
    ).eval()
    folder = swapped_model(tmp_path, script_module(other))
    with pytest.raises(ArtifactError, match="golden sample"):
        load_artifact(folder)


def test_model_pt_refuses_a_2d_batch_instead_of_broadcasting(artifact: Artifact) -> None:
    with pytest.raises(torch.jit.Error, match=rf"\(batch, {WINDOW}, 50\)"):  # type: ignore[attr-defined]
        artifact.module(torch.zeros(4, 50))


def test_a_reference_sample_from_another_model_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "synthetic-plant" / "2"
    shutil.copytree(DEFAULT, folder)
    reference = np.load(folder / REFERENCE_FILE) * 1.5
    np.save(folder / REFERENCE_FILE, reference)
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    manifest["files"][REFERENCE_FILE]["sha256"] = sha256_file(folder / REFERENCE_FILE)
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="companion_files"):
        load_artifact(folder)
