"""The exported artifact: TorchScript parity, the torch.export program, the manifest, and
refusal of tampered files."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from models.export import (
    REFERENCE_SIZE,
    export_artifact,
    export_program,
    reference_sample,
    script_module,
)
from models.network import ACTIVATIONS, ExportableScorer, ScoringModule, SensorAutoencoder
from models.synthetic import generate_plant
from models.train import TrainResult, train
from models.train_config import TrainConfig
from service.scoring.artifact import (
    CORE_CONTRACT,
    ArtifactError,
    discover_artifacts,
    load_artifact,
    sha256_array,
    sha256_file,
    torchscript_deprecation_silenced,
)
from service.scoring.artifact_writer import ArtifactSwapFailed
from service.scoring.manifest import (
    CONTRACT_FILE,
    EXPORT_FILE,
    MANIFEST_FILE,
    REFERENCE_FILE,
    TORCHSCRIPT_FILE,
)

N_SENSORS = 5


@pytest.fixture(scope="module", params=[1, 3], ids=["window1", "window3"])
def trained(request: pytest.FixtureRequest) -> tuple[TrainResult, np.ndarray]:
    torch.set_num_threads(1)
    plant = generate_plant(600, seed=3, n_sensors=N_SENSORS).values
    config = TrainConfig(epochs=3, patience=2, seed=0, window=request.param)
    return train(plant, [f"s{i}" for i in range(N_SENSORS)], config), plant


@pytest.fixture(scope="module")
def artifact(
    trained: tuple[TrainResult, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    result, plant = trained
    out = tmp_path_factory.mktemp("models") / "tiny" / f"w{result.window}"
    export_artifact(
        result,
        out,
        name="tiny",
        version=f"w{result.window}",
        training_data_sha256=sha256_array(plant),
        training_data={"training": {"source": "synthetic"}},
    )
    return out


def probe(result: TrainResult, plant: np.ndarray, batch: int) -> torch.Tensor:
    """Raw windows, some far outside the training range so the outputs are not all tiny."""
    rows = np.lib.stride_tricks.sliding_window_view(
        plant[: batch + result.window], result.window, 0
    )
    x = torch.tensor(np.array(rows[:batch].transpose(0, 2, 1)), dtype=torch.float32)
    x[0, -1, 0] += 50 * float(result.scaler_scale[0])
    return x


@pytest.mark.parametrize("batch", [1, 7])
def test_eager_scripted_reloaded_and_exported_agree(
    trained: tuple[TrainResult, np.ndarray], artifact: Path, batch: int
) -> None:
    result, plant = trained
    x = probe(result, plant, batch)
    with torch.inference_mode():
        eager = result.module.score(x)
        eager_forward = result.module(x)
        scripted = script_module(result.module).score(x)
        loaded = load_artifact(artifact).module.score(x)
        program = torch.export.load(str(artifact / EXPORT_FILE)).module()(x)
    assert eager[0].shape == (batch, N_SENSORS) and eager[1].shape == (batch, N_SENSORS)
    torch.testing.assert_close(eager_forward, eager[0], rtol=0, atol=0)
    for other in (scripted, loaded, program):
        torch.testing.assert_close(other[0], eager[0], rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(other[1], eager[1], rtol=1e-6, atol=1e-5)
    assert float(eager[0][0, 0]) > 100  # the out-of-range probe is scored as such


def test_reconstruction_is_in_raw_units(trained: tuple[TrainResult, np.ndarray]) -> None:
    result, plant = trained
    x = probe(result, plant, 4)
    with torch.inference_mode():
        errors, reconstruction = result.module.score(x)
    mean = torch.tensor(result.scaler_mean, dtype=torch.float32)
    scale = torch.tensor(result.scaler_scale, dtype=torch.float32)
    assert reconstruction[1:].sub(x[1:, -1, :]).abs().div(scale).max() < 5
    if result.window == 1:  # the error is exactly the squared standardised difference
        expected = ((x[:, 0, :] - reconstruction) / scale) ** 2
        torch.testing.assert_close(errors, expected, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(reconstruction, mean.expand_as(reconstruction))


@pytest.mark.parametrize("trained", [3], indirect=True)  # one subprocess is enough
def test_torchscript_loads_without_project_code(artifact: Path, tmp_path: Path) -> None:
    """A consumer needs only torch: no import of models or service, from another folder."""
    code = (
        "import sys, warnings, torch\n"
        "warnings.simplefilter('ignore', DeprecationWarning)\n"
        f"m = torch.jit.load({str(artifact / TORCHSCRIPT_FILE)!r})\n"
        f"x = torch.randn(3, m.window, {N_SENSORS})\n"
        "errors, reconstruction = m.score(x)\n"
        f"assert errors.shape == (3, {N_SENSORS}) and torch.equal(m(x), errors)\n"
        "leaked = [n for n in sys.modules if n.split('.')[0] in ('models', 'service')]\n"
        "assert not leaked, leaked\n"
        "print('ok', tuple(reconstruction.shape))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"ok (3, {N_SENSORS})"


def test_manifest_fields(trained: tuple[TrainResult, np.ndarray], artifact: Path) -> None:
    result, plant = trained
    manifest = load_artifact(artifact).manifest
    raw = json.loads((artifact / MANIFEST_FILE).read_text())
    for field in (
        "format_version", "name", "version", "sensors", "window", "scaler", "threshold",
        "files", "training_data_sha256", "training", "metrics", "torch_version", "created_at",
    ):  # fmt: skip
        assert field in raw, field
    assert manifest.sensors == result.sensors
    assert manifest.window == result.window
    assert manifest.scaler.mean == pytest.approx(list(result.scaler_mean))
    assert manifest.threshold.value == result.threshold.value
    assert manifest.threshold.quantile == 0.99
    assert manifest.threshold.n_calibration == result.threshold.n_calibration
    assert manifest.threshold.false_alarm_rate_ci == result.threshold.false_alarm_rate_ci
    assert set(manifest.files) == {TORCHSCRIPT_FILE, EXPORT_FILE, REFERENCE_FILE}
    assert manifest.files[EXPORT_FILE].format == "torch.export"
    assert manifest.training_data_sha256 == sha256_array(plant)
    assert manifest.torch_version == torch.__version__
    assert manifest.training["window"] == result.window
    assert manifest.training["latent"] == result.config.latent
    assert manifest.training["splits"]["train"] == list(result.splits["train"])
    assert manifest.training["data"] == {"training": {"source": "synthetic"}}
    assert manifest.metrics["val_loss"] == result.metrics["val_loss"]
    assert "threshold_warning" in manifest.metrics
    memory = manifest.metrics["normal_memory"]  # the drift test counts labelled stretches by it
    assert memory["reading"] >= 1.0 and len(memory["sensors"]) == N_SENSORS
    assert memory["score"] >= 1.0  # recalibration counts labelled stretches' scores by it
    assert memory["exceedance"] >= 1.0  # and by this, when its excursions last longer
    assert len(manifest.metrics["history"]) == len(result.history)
    reference = np.load(artifact / REFERENCE_FILE)
    np.testing.assert_array_equal(reference, result.calibration_errors.astype(np.float32))


@pytest.mark.parametrize("family", ["dpca", "cva"])
def test_a_linear_models_manifest_records_no_network_settings(family: str, tmp_path: Path) -> None:
    """Fitted in closed form: no epochs, layers or learning rate to record, so none that a
    reader could take for how the model was made."""
    plant = generate_plant(600, seed=3, n_sensors=N_SENSORS).values
    result = train(plant, [f"s{i}" for i in range(N_SENSORS)], TrainConfig(family=family, window=2))
    export_artifact(result, tmp_path / "m", name="m", version="1", training_data_sha256="0" * 64)
    manifest = load_artifact(tmp_path / "m").manifest
    for network in ("epochs", "lr", "hidden", "latent", "batch_size", "kl_warmup", "residual"):
        assert network not in manifest.training, network
    assert ("variance" in manifest.training) is (family == "dpca")
    assert manifest.training["family"] == family and manifest.training["window"] == 2
    for network in ("epochs_run", "best_epoch", "history"):
        assert network not in manifest.metrics, network
    assert manifest.metrics["val_loss"] == result.metrics["val_loss"]


@pytest.mark.parametrize("victim", [TORCHSCRIPT_FILE, EXPORT_FILE, REFERENCE_FILE])
def test_tampered_file_is_refused(artifact: Path, tmp_path: Path, victim: str) -> None:
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in artifact.iterdir():
        (copy / path.name).write_bytes(path.read_bytes())
    load_artifact(copy)  # an exact copy loads
    data = bytearray((copy / victim).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / victim).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=f"{victim} checksum mismatch"):
        load_artifact(copy)


def _copy(artifact: Path, folder: Path) -> Path:
    folder.mkdir()
    for path in artifact.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def _edit_manifest(folder: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    """An edit made with care: every checksum in the manifest is brought up to date."""
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    edit(manifest)
    for name, entry in manifest["files"].items():
        entry["sha256"] = sha256_file(folder / name)
        entry["bytes"] = (folder / name).stat().st_size
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))


def _swap_first_sensors(m: dict[str, Any]) -> None:
    m["sensors"][:2] = m["sensors"][1::-1]


def _scale_threshold(m: dict[str, Any]) -> None:
    m["threshold"]["value"] *= 1000


def _shift_scaler(m: dict[str, Any]) -> None:
    m["scaler"]["mean"][0] += 1.0


def _fewer_calibration_samples(m: dict[str, Any]) -> None:
    m["threshold"]["n_calibration"] *= 100


def _other_training_data(m: dict[str, Any]) -> None:
    m["training_data_sha256"] = "0" * 64


def _glitch_limits_added(m: dict[str, Any]) -> None:
    m["glitch_limits"] = [1.0] * len(m["sensors"])


@pytest.mark.parametrize("trained", [1], indirect=True)
@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (_swap_first_sensors, "sensors"),
        (_scale_threshold, "threshold"),
        (_shift_scaler, "scaler_mean"),
        # what makes the threshold trustworthy, and which data the model came from
        (_fewer_calibration_samples, "threshold_n_calibration"),
        (_other_training_data, "training_data_sha256"),
        # how its readings are read: the glitch guard's limits
        (_glitch_limits_added, "glitch_limits"),
    ],
)
def test_a_manifest_that_does_not_describe_its_model_is_refused(
    artifact: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None], named: str
) -> None:
    copy = _copy(artifact, tmp_path / "copy")
    _edit_manifest(copy, edit)
    with pytest.raises(ArtifactError, match=f"does not describe the model.*: {named} differ"):
        load_artifact(copy)


@pytest.mark.parametrize("trained", [1], indirect=True)
def test_a_contract_from_before_the_backing_keys_still_loads(
    artifact: Path, tmp_path: Path
) -> None:
    copy = _copy(artifact, tmp_path / "copy")
    extra = {CONTRACT_FILE: ""}
    with torchscript_deprecation_silenced():
        module = torch.jit.load(str(copy / TORCHSCRIPT_FILE), _extra_files=extra)  # type: ignore[no-untyped-call]
        contract = json.loads(extra[CONTRACT_FILE])
        older = {key: contract[key] for key in CORE_CONTRACT}
        torch.jit.save(
            module, str(copy / TORCHSCRIPT_FILE), _extra_files={CONTRACT_FILE: json.dumps(older)}
        )
    _edit_manifest(copy, _fewer_calibration_samples)  # not in an older contract: not checked
    assert load_artifact(copy).manifest.threshold.n_calibration > 0
    _edit_manifest(copy, _scale_threshold)  # in every contract
    with pytest.raises(ArtifactError, match="threshold differ"):
        load_artifact(copy)


@pytest.mark.parametrize("trained", [1], indirect=True)
def test_a_failed_replacement_keeps_the_model_already_there(
    trained: tuple[TrainResult, np.ndarray], artifact: Path, tmp_path: Path
) -> None:
    """Export wrote over the old files before the new manifest was validated: a failure
    (here a threshold that is not finite) destroyed a working model."""
    result, plant = trained
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    target = _copy(artifact, tmp_path / "models" / "tiny" / "w1")
    before = {path.name: path.read_bytes() for path in target.iterdir()}
    broken = dataclasses.replace(
        result, threshold=dataclasses.replace(result.threshold, value=float("nan"))
    )
    with pytest.raises(ValueError, match="threshold"):
        export_artifact(
            broken,
            target,
            name="tiny",
            version="w1",
            training_data_sha256=sha256_array(plant),
        )
    assert {path.name: path.read_bytes() for path in target.iterdir()} == before
    assert load_artifact(target).manifest.version == "w1"
    assert sorted(p.name for p in target.parent.iterdir()) == ["w1"]  # no staging left
    export_artifact(
        result, target, name="tiny", version="w1", training_data_sha256=sha256_array(plant)
    )
    assert load_artifact(target).manifest.version == "w1"
    assert sorted(p.name for p in target.parent.iterdir()) == ["w1"]


@pytest.mark.parametrize("trained", [1], indirect=True)
def test_a_manifest_that_cannot_be_read_says_so(
    artifact: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It was reported as "not valid JSON: [Errno 13] Permission denied"."""
    copy = _copy(artifact, tmp_path / "copy")

    def denied(self: Path, *args: Any, **kwargs: Any) -> str:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_text", denied)  # root reads any file: simulate the refusal
    with pytest.raises(ArtifactError, match="manifest.json cannot be read: Permission denied"):
        load_artifact(copy)


@pytest.mark.parametrize("trained", [1], indirect=True)
def test_an_exported_folder_is_as_readable_as_any_folder_its_user_makes(
    artifact: Path, tmp_path: Path
) -> None:
    """Staging in a private temporary folder left the version readable by its owner only:
    the container's user could not load a model trained on the host."""
    made = tmp_path / "made-by-mkdir"
    made.mkdir()
    assert artifact.stat().st_mode & 0o777 == made.stat().st_mode & 0o777


def test_a_linked_version_folder_is_replaced_where_it_points(
    trained: tuple[TrainResult, np.ndarray], artifact: Path, tmp_path: Path
) -> None:
    """The link had been replaced by a folder, and a dangling link left behind."""
    result, plant = trained
    real = _copy(artifact, tmp_path / "store")
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    link = tmp_path / "models" / "tiny" / "w1"
    link.symlink_to(real, target_is_directory=True)
    export_artifact(
        result, link, name="tiny", version="w1", training_data_sha256=sha256_array(plant)
    )
    assert link.is_symlink() and load_artifact(link).manifest.version == "w1"
    assert sorted(p.name for p in link.parent.iterdir()) == ["w1"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["models", "store"]


@pytest.mark.parametrize("trained", [1], indirect=True)
def test_a_swap_that_cannot_finish_says_where_the_old_model_is(
    trained: tuple[TrainResult, np.ndarray],
    artifact: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result, plant = trained
    (tmp_path / "models" / "tiny").mkdir(parents=True)
    target = _copy(artifact, tmp_path / "models" / "tiny" / "w1")
    moves = []
    rename = Path.rename

    def failing(self: Path, to: Path) -> Path:
        moves.append(self.name)
        if len(moves) > 1:  # the old one moved aside; neither the new nor the old gets back
            raise OSError(28, "No space left on device")
        return rename(self, to)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(ArtifactSwapFailed, match="it is in .*replaced-.*; move it back to") as info:
        export_artifact(
            result, target, name="tiny", version="w1", training_data_sha256=sha256_array(plant)
        )
    monkeypatch.undo()
    (aside,) = [p for p in target.parent.iterdir() if ".replaced-" in p.name]
    assert str(aside) in str(info.value)
    assert load_artifact(aside.rename(target)).manifest.version == "w1"


def test_discovery_skips_hidden_folders(tmp_path: Path) -> None:
    for folder in ("plant/1", "plant/.1.staging", ".trash/1"):
        (tmp_path / folder).mkdir(parents=True)
        (tmp_path / folder / MANIFEST_FILE).write_text("{}")
    assert discover_artifacts(tmp_path) == [tmp_path / "plant" / "1"]


@pytest.mark.parametrize("trained", [1], indirect=True)
def test_an_infinite_threshold_is_refused_by_the_schema(artifact: Path, tmp_path: Path) -> None:
    copy = _copy(artifact, tmp_path / "copy")
    text = (copy / MANIFEST_FILE).read_text()
    manifest = json.loads(text)
    manifest["threshold"]["value"] = float("inf")
    (copy / MANIFEST_FILE).write_text(json.dumps(manifest))  # json writes Infinity
    with pytest.raises(ArtifactError, match="threshold.value"):
        load_artifact(copy)


@pytest.mark.parametrize("trained", [1], indirect=True)
@pytest.mark.parametrize(
    ("reference", "named"),
    [
        (np.array([object()], dtype=object), "not a readable .npy"),
        (np.full((5, N_SENSORS), np.nan, dtype=np.float32), "finite, non-negative"),
        (np.ones((5, N_SENSORS), dtype=np.int64), "expected floats"),
    ],
)
def test_a_bad_reference_sample_with_a_matching_checksum_is_refused(
    artifact: Path, tmp_path: Path, reference: np.ndarray, named: str
) -> None:
    copy = _copy(artifact, tmp_path / "copy")
    np.save(copy / REFERENCE_FILE, reference, allow_pickle=True)
    _edit_manifest(copy, lambda m: None)
    with pytest.raises(ArtifactError, match=named):
        load_artifact(copy)


@pytest.mark.parametrize("trained", [1], indirect=True)
def test_an_artifact_from_before_the_embedded_contract_still_loads(
    artifact: Path, tmp_path: Path
) -> None:
    copy = _copy(artifact, tmp_path / "copy")
    with torchscript_deprecation_silenced():
        module = torch.jit.load(str(copy / TORCHSCRIPT_FILE))  # type: ignore[no-untyped-call]
        torch.jit.save(module, str(copy / TORCHSCRIPT_FILE))  # without contract.json
    _edit_manifest(copy, lambda m: None)
    assert load_artifact(copy).manifest.name == "tiny"


def test_reference_sample_spans_the_calibration_period() -> None:
    errors = np.arange(5000, dtype=np.float64).reshape(2500, 2)
    sample = reference_sample(errors)
    assert sample.shape == (REFERENCE_SIZE, 2) and sample.dtype == np.float32
    assert sample[0, 0] == 0 and sample[-1, 0] == errors[-1, 0]
    assert reference_sample(errors[:10]).shape == (10, 2)


def test_scoring_module_rejects_inconsistent_parts() -> None:
    autoencoder = SensorAutoencoder(6)
    with pytest.raises(ValueError, match="window 2 x 2 sensors"):
        ScoringModule(autoencoder, mean=[0.0, 0.0], scale=[1.0, 1.0], window=2)
    with pytest.raises(ValueError, match="positive"):
        ScoringModule(autoencoder, mean=[0.0] * 6, scale=[1.0] * 5 + [0.0], window=1)


def test_exported_program_accepts_any_batch(trained: tuple[TrainResult, np.ndarray]) -> None:
    result, plant = trained
    program = export_program(result.module).module()
    for batch in (1, 2, 33):
        x = probe(result, plant, batch)
        with torch.inference_mode():
            torch.testing.assert_close(
                program(x)[0], ExportableScorer(result.module)(x)[0], rtol=1e-6, atol=1e-7
            )


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_scripts_and_exports(activation: str) -> None:
    torch.manual_seed(0)
    autoencoder = SensorAutoencoder(8, hidden=(6,), latent=2, activation=activation).eval()
    module = ScoringModule(autoencoder, mean=[1.0] * 4, scale=[2.0] * 4, window=2).eval()
    x = torch.randn(5, 2, 4)
    with torch.inference_mode():
        eager = module.score(x)
        scripted = script_module(module).score(x)
        program = export_program(module).module()(x)
    for other in (scripted, program):
        torch.testing.assert_close(other[0], eager[0])
        torch.testing.assert_close(other[1], eager[1])


@pytest.mark.parametrize("trained", [1], indirect=True)
@pytest.mark.parametrize("victim", [REFERENCE_FILE, EXPORT_FILE])
def test_a_file_from_another_model_is_refused_even_with_its_checksum(
    artifact: Path, tmp_path: Path, victim: str
) -> None:
    """Another model's reference sample or model.pt2, well formed, its checksum brought up to
    date in the manifest: model.pt's contract names the files it was exported with."""
    copy = _copy(artifact, tmp_path / "copy")
    other = _copy(artifact, tmp_path / "other")
    plant = generate_plant(600, seed=9, n_sensors=N_SENSORS).values
    result = train(plant, [f"s{i}" for i in range(N_SENSORS)], TrainConfig(epochs=2, seed=1))
    export_artifact(result, other, name="tiny", version="x", training_data_sha256="0" * 64)
    (copy / victim).write_bytes((other / victim).read_bytes())
    _edit_manifest(copy, lambda m: None)
    with pytest.raises(ArtifactError, match="companion_files differ"):
        load_artifact(copy)


@pytest.mark.parametrize("trained", [1], indirect=True)
def test_a_model_file_that_gives_other_numbers_is_refused_by_its_golden_sample(
    trained: tuple[TrainResult, np.ndarray], artifact: Path, tmp_path: Path
) -> None:
    """A well-formed model.pt returning zeros (or another model's numbers) with the manifest's
    contract copied into it and the checksum updated: re-scoring the golden sample tells."""
    result, _ = trained
    manifest = json.loads((artifact / MANIFEST_FILE).read_text())
    assert len(manifest["golden"]["inputs"]) == 8

    class Zeros(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(x.shape[0], x.shape[2])

        @torch.jit.export
        def score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.zeros(x.shape[0], x.shape[2]), x[:, -1, :]

    copy = _copy(artifact, tmp_path / "copy")
    extra: dict[str, Any] = {CONTRACT_FILE: ""}
    with torchscript_deprecation_silenced():
        torch.jit.load(str(artifact / TORCHSCRIPT_FILE), _extra_files=extra)
        torch.jit.save(torch.jit.script(Zeros()), str(copy / TORCHSCRIPT_FILE), _extra_files=extra)
    _edit_manifest(copy, lambda m: None)
    with pytest.raises(ArtifactError, match="does not give the errors recorded for its golden"):
        load_artifact(copy)
    assert load_artifact(artifact).manifest.golden is not None


def test_a_golden_sample_of_zeros_is_refused_by_the_schema(artifact: Path, tmp_path: Path) -> None:
    copy = _copy(artifact, tmp_path / "copy")
    _edit_manifest(
        copy, lambda m: m["golden"].update(errors=[[0.0] * N_SENSORS] * len(m["golden"]["errors"]))
    )
    with pytest.raises(ArtifactError, match="golden errors are all zero"):
        load_artifact(copy)


@pytest.mark.parametrize("shape", [(4, N_SENSORS), (4, 1, 3, N_SENSORS), (4, 7, N_SENSORS)])
def test_the_model_file_refuses_a_wrong_shape_instead_of_broadcasting(
    artifact: Path, shape: tuple[int, ...]
) -> None:
    with torchscript_deprecation_silenced():
        module = torch.jit.load(str(artifact / TORCHSCRIPT_FILE))
    with pytest.raises(torch.jit.Error, match=r"expected raw readings shaped \(batch, "):
        module(torch.ones(shape))
