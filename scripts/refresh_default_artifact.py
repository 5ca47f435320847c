"""Write the bundled model ``models/synthetic-plant/1`` again with today's artifact writer,
without retraining: the same weights, scaler, threshold and reference sample, plus what
artifacts written since carry (a golden sample re-scored at load, model.pt refusing input
that is not (batch, window, sensors), a contract binding model.pt2 and the reference sample).

The golden sample's inputs come from the calibration run the model was calibrated on,
generated again as ``scripts/train-default`` generates it (checked against the fingerprint
the manifest recorded); its expected errors are the model's own. Refuses to write when the
rebuilt model's errors differ in any bit from the bundled model.pt's.

Run: ``.venv/bin/python scripts/refresh_default_artifact.py``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from models.data import load_readings, write_readings_csv
from models.export import export_program, golden_sample, script_module
from models.network import ScoringModule, SensorAutoencoder
from models.synthetic import generate_plant
from models.windows import golden_windows
from service.scoring.artifact import (
    read_manifest,
    sha256_array,
    torchscript_deprecation_silenced,
    verify_files,
)
from service.scoring.artifact_writer import write_artifact
from service.scoring.manifest import REFERENCE_FILE, TORCHSCRIPT_FILE

REPO = Path(__file__).resolve().parents[1]
DEFAULT = REPO / "models" / "synthetic-plant" / "1"
CALIBRATION_RUN = {"readings": 10_000, "seed": 2}  # as scripts/train-default generates it


def calibration_values(recorded_sha256: str) -> np.ndarray:
    """The calibration run, through CSV as train read it (the CSV rounds the values)."""
    run = generate_plant(CALIBRATION_RUN["readings"], seed=CALIBRATION_RUN["seed"])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "calibration.csv"
        write_readings_csv(path, run)
        values = load_readings(path).values
    if sha256_array(values) != recorded_sha256:
        raise SystemExit("the generated calibration run is not the one the model was calibrated on")
    return values


def rebuilt_module(
    folder: Path, training: dict[str, Any], mean: list[float], scale: list[float]
) -> tuple[ScoringModule, torch.jit.ScriptModule]:
    """The bundled weights in today's ScoringModule, and the bundled model.pt itself."""
    with torchscript_deprecation_silenced():
        bundled = torch.jit.load(str(folder / TORCHSCRIPT_FILE), map_location="cpu")  # type: ignore[no-untyped-call]
    autoencoder = SensorAutoencoder(
        len(mean) * int(training["window"]),
        hidden=training["hidden"],
        latent=training["latent"],
        dropout=training["dropout"],
        activation=training["activation"],
    )
    module = ScoringModule(autoencoder, mean=mean, scale=scale, window=int(training["window"]))
    module.load_state_dict(bundled.state_dict(), strict=True)
    module.eval()
    return module, bundled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--folder", type=Path, default=DEFAULT, help="artifact folder (default: the bundled one)"
    )
    folder = parser.parse_args(argv).folder
    manifest = read_manifest(folder)
    verify_files(folder, manifest)
    fields = manifest.model_dump(mode="json", exclude={"files", "golden"})
    module, bundled = rebuilt_module(
        folder, fields["training"], manifest.scaler.mean, manifest.scaler.scale
    )
    values = calibration_values(fields["training"]["data"]["calibration"]["sha256"])
    probe = torch.from_numpy(values.astype(np.float32)).reshape(
        -1, manifest.window, manifest.n_sensors
    )
    with torch.inference_mode():
        if not torch.equal(module(probe), bundled(probe)):
            raise SystemExit("the rebuilt model's errors differ from the bundled model.pt's")
    fields["golden"] = golden_sample(module, golden_windows(values, manifest.window))
    write_artifact(
        folder,
        scripted=script_module(module),
        reference_errors=np.load(folder / REFERENCE_FILE, allow_pickle=False),
        manifest_fields=fields,
        exported=export_program(module),
    )
    print(
        f"rewrote {folder} with a golden sample of {len(fields['golden']['inputs'])} windows",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
