"""model.pt2 loaded with ``load_exported``: a wrong shape is refused naming the expected
``(batch, window, sensors)``, and a program from another model is refused at load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from models.data import sliding_windows
from models.export import export_program
from models.network import ScoringModule, SensorAutoencoder
from models.synthetic import generate_plant
from service.scoring.artifact import ArtifactError, load_artifact, sha256_file
from service.scoring.exported import load_exported, shape_problem
from service.scoring.manifest import EXPORT_FILE

BUNDLED = Path(__file__).parents[2] / "models" / "synthetic-plant" / "2"
WINDOW = 20  # the bundled model's (tests/models/test_default_artifact.py checks it)


def test_the_bundled_program_scores_as_model_pt_does() -> None:
    scorer = load_exported(BUNDLED)
    readings = generate_plant(200, seed=5).values
    x = torch.tensor(sliding_windows(readings, WINDOW), dtype=torch.float32)
    with torch.inference_mode():
        errors, reconstruction = scorer(x)
        expected_errors, expected_reconstruction = load_artifact(BUNDLED).module.score(x)
    assert torch.equal(errors, expected_errors)
    assert torch.equal(reconstruction, expected_reconstruction)


@pytest.mark.parametrize(
    "shape", [(3, 50), (3, WINDOW, 49), (3, WINDOW - 1, 50), (3, 1, 50), (1, 3, WINDOW, 50)]
)
def test_a_wrong_shape_is_refused_naming_the_expected_one(shape: tuple[int, ...]) -> None:
    scorer = load_exported(BUNDLED)
    expected = rf"\(batch, window, sensors\) = \(batch, {WINDOW}, 50\)"
    with pytest.raises(ValueError, match=expected):
        scorer(torch.zeros(shape))


def test_the_bare_program_says_less() -> None:
    """Why the loader exists: torch.export's own refusal names no shape."""
    program = torch.export.load(str(BUNDLED / EXPORT_FILE)).module()
    with pytest.raises(Exception) as refused:
        program(torch.zeros(3, 50))
    assert "(batch, window, sensors)" not in str(refused.value)


def test_a_2d_batch_gets_a_reshape_hint() -> None:
    assert "x.reshape(-1, 1, 50)" in str(shape_problem((7, 50), 1, 50))
    assert "last 4 readings" in str(shape_problem((7, 50), 4, 50))
    assert shape_problem((7, 4, 50), 4, 50) is None


def test_a_program_from_another_model_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "synthetic-plant" / "2"
    shutil.copytree(BUNDLED, folder)
    torch.manual_seed(3)
    manifest = json.loads((folder / "manifest.json").read_text())
    other = ScoringModule(
        SensorAutoencoder(50 * WINDOW, hidden=[32], latent=8),
        mean=manifest["scaler"]["mean"],
        scale=manifest["scaler"]["scale"],
        window=WINDOW,
    ).eval()
    torch.export.save(export_program(other), str(folder / EXPORT_FILE))
    manifest["files"][EXPORT_FILE]["sha256"] = sha256_file(folder / EXPORT_FILE)
    manifest["files"][EXPORT_FILE]["bytes"] = (folder / EXPORT_FILE).stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="golden sample"):
        load_exported(folder)
    # The service's loader refuses it too: model.pt's contract holds model.pt2's checksum.
    with pytest.raises(ArtifactError, match="companion_files"):
        load_artifact(folder)
