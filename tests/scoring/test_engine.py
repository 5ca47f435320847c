"""The scoring engine: large batches run in slices and give the results of one call."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import ArtifactWriter

from service.scoring import engine as engine_module
from service.scoring.artifact import load_artifact
from service.scoring.engine import ScoringEngine
from service.settings import REPO_MODELS_DIR


@pytest.mark.parametrize("window", [1, 3])
def test_sliced_batches_equal_one_call(
    tmp_path: Path,
    window: int,
    monkeypatch: pytest.MonkeyPatch,
    write_test_artifact: ArtifactWriter,
) -> None:
    folder = write_test_artifact(tmp_path / "models", window=window, n_sensors=5, scale=2.0)
    engine = ScoringEngine(load_artifact(folder))
    windows = np.random.default_rng(1).normal(size=(1000, window, 5)).astype(np.float32)
    monkeypatch.setattr(engine_module, "CHUNK_ROWS", 64)  # 16 slices, the last one short
    sliced = engine.score(windows)
    monkeypatch.setattr(engine_module, "CHUNK_ROWS", 10**9)
    whole = engine.score(windows)
    for got, want in zip(sliced, whole, strict=True):
        assert got.shape == (1000, 5) and got.dtype == np.float32
        assert np.array_equal(got, want)


def test_bundled_model_sliced_equals_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled model: products over fewer rows, the same values (within 1e-6)."""
    folders = sorted(REPO_MODELS_DIR.glob("*/*/manifest.json"))
    if not folders:
        pytest.skip(f"no bundled model under {REPO_MODELS_DIR}")
    artifact = load_artifact(folders[0].parent)
    engine = ScoringEngine(artifact)
    manifest = artifact.manifest
    rng = np.random.default_rng(2)
    mean, scale = np.array(manifest.scaler.mean), np.array(manifest.scaler.scale)
    readings = mean + scale * rng.normal(size=(5000, manifest.window, manifest.n_sensors))
    windows = readings.astype(np.float32)
    sliced = engine.score(windows)
    monkeypatch.setattr(engine_module, "CHUNK_ROWS", 10**9)
    whole = engine.score(windows)
    for got, want in zip(sliced, whole, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("rows", [7, 5000])
def test_errors_only_skips_the_reconstruction(
    tmp_path: Path, rows: int, write_test_artifact: ArtifactWriter
) -> None:
    folder = write_test_artifact(tmp_path / "models", window=2, n_sensors=5, scale=2.0)
    engine = ScoringEngine(load_artifact(folder))
    windows = np.random.default_rng(3).normal(size=(rows, 2, 5)).astype(np.float32)
    squared, reconstruction = engine.score(windows)
    errors_only, nothing = engine.score(windows, reconstruct=False)
    assert np.array_equal(errors_only, squared) and reconstruction.shape == (rows, 5)
    assert nothing.shape == (0, 5)


def test_a_forward_that_disagrees_with_score_is_not_used(
    tmp_path: Path, write_test_artifact: ArtifactWriter
) -> None:
    """``forward`` serves errors-only calls only if it matches ``score`` on a probe."""
    artifact = load_artifact(write_test_artifact(tmp_path / "models", n_sensors=3))

    class Disagreeing:
        def __init__(self, module: torch.jit.ScriptModule) -> None:
            self.score = module.score

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.score(x)[0] + 1.0  # type: ignore[no-any-return]

    engine = ScoringEngine(
        replace(artifact, module=Disagreeing(artifact.module))  # type: ignore[arg-type]
    )
    windows = np.ones((4, 1, 3), dtype=np.float32)
    squared, reconstruction = engine.score(windows, reconstruct=False)
    assert np.array_equal(squared, engine.score(windows)[0])
    assert reconstruction.shape == (4, 3)  # score() served, reconstruction included
