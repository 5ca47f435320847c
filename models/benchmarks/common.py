"""What every real-data benchmark shares: where the data is, the detectors compared (the
model and the PCA baseline, limited on the same calibration readings) and how settings and
tables are described.

Every benchmark uses the default training settings: nothing is tuned on fault or test files,
which are only ever scored. The PCA baseline is fitted on the training readings that are not
calibration readings (TEP: all of d00.dat, as the published PCA; SKAB and NAB: the model's
training split, the calibration tail being held out) and limited at the quantile of the
calibration readings. Where the calibration readings are a separate run (TEP) the model's
limit is set the same way; on SKAB's and NAB's short runs the model keeps the out-of-time
threshold ``train`` gives a run without calibration data (models/out_of_time.py), so there
the two columns differ in their limit's rule too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from models.baselines import PCABaseline
from models.fitting import EpochRecord
from models.out_of_time import calibrate_out_of_time
from models.report import (
    Table,
    markdown_table,
)
from models.scores import detector_scores, per_sensor_errors
from models.selection import select
from models.selection_rule import candidate_label
from models.train import TrainResult, train
from models.train_config import TrainConfig

DATA_DIR_ENV = "SENSOR_DATA_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]

DETECTORS = ("autoencoder", "pca_t2", "pca_spe")
"""Keys of the detectors; "autoencoder" is the trained model whatever its family (reports
show it as :func:`shown` says)."""
MODEL_LABEL = "model (ours)"


DETECTOR_LABELS = {
    "autoencoder": MODEL_LABEL,
    "pca_t2": "PCA-T² (ours)",
    "pca_spe": "PCA-SPE (ours)",
    "pca_t2_or_spe": "PCA-T² or SPE (ours)",
}


def shown(detector: str) -> str:
    """A detector's name in a table: the trained model is not always an autoencoder."""
    return DETECTOR_LABELS.get(detector, detector)


class BenchmarkDataMissing(FileNotFoundError):
    """The benchmark's data folder is not there: say where it was looked for and how to set it."""


def default_data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else REPO_ROOT.parent / "shared" / "data"


def require(path: Path, what: str) -> Path:
    if not path.exists():
        raise BenchmarkDataMissing(
            f"{what} not found at {path}; pass --data-dir or set {DATA_DIR_ENV} "
            "to the folder holding tep/, skab/ and nab/"
        )
    return path


def progress_printer(label: str, every: int = 25) -> Callable[[EpochRecord, int], None]:
    def report(record: EpochRecord, budget: int) -> None:
        if record.epoch == 1 or record.epoch % every == 0:
            print(
                f"  [{label}] epoch {record.epoch}/{budget} train {record.train_loss:.4f} "
                f"val {record.val_loss:.4f}",
                file=sys.stderr,
            )

    return report


def reading_errors(result: TrainResult, values: np.ndarray) -> np.ndarray:
    """Per-sensor squared errors for readings ``window-1 .. n-1`` (each scored with the
    readings before it as context)."""
    return per_sensor_errors(result, values)


@dataclass(frozen=True)
class DetectorSet:
    """The model and the PCA baseline, with limits from the same calibration readings (the
    model's own threshold where ``build`` says so)."""

    result: TrainResult
    pca: PCABaseline
    limits: dict[str, float]
    calibration_source: str

    @classmethod
    def build(
        cls,
        result: TrainResult,
        train_values: np.ndarray,
        calibration_values: np.ndarray,
        *,
        quantile: float,
        calibration_source: str,
        own_threshold: bool = False,
        pca_on_all: bool = False,
    ) -> DetectorSet:
        """PCA is fitted on the model's training split, or with ``pca_on_all`` on all of
        ``train_values`` (when the calibration readings are a separate run); every limit is
        the same quantile (order statistic at or above it) of the same calibration readings.
        ``own_threshold``: the model keeps the threshold ``train`` gave it (on a short run
        without calibration data, out of time: models/out_of_time.py)."""
        start, stop = (0, len(train_values)) if pca_on_all else result.splits["train"]
        pca = PCABaseline.fit(train_values[start:stop])
        calibration = score_all(result, pca, calibration_values)
        limits = {name: limit_at(scores, quantile) for name, scores in calibration.items()}
        if own_threshold:
            limits["autoencoder"] = result.threshold.value
        pca = replace(
            pca,
            t2_limit=limits["pca_t2"],
            spe_limit=limits["pca_spe"],
            quantile=quantile,
            n_calibration=len(calibration["pca_t2"]),
        )
        return cls(result, pca, limits, calibration_source)

    def scores(self, values: np.ndarray) -> dict[str, np.ndarray]:
        return score_all(self.result, self.pca, values)


def limit_at(calibration_scores: np.ndarray, quantile: float) -> float:
    """A control limit: the ``quantile`` of calibration scores, as the order statistic at or
    above it (the rule ``train`` sets its threshold with)."""
    return float(np.quantile(calibration_scores, quantile, method="higher"))


def score_all(result: TrainResult, pca: PCABaseline, values: np.ndarray) -> dict[str, np.ndarray]:
    """Per-reading scores of every detector on the same readings (the first ``window-1``
    readings have no autoencoder score, so they are dropped for all)."""
    skip = result.window - 1
    return {
        "autoencoder": detector_scores(result, values),
        "pca_t2": pca.t2(values[skip:]),
        "pca_spe": pca.spe(values[skip:]),
    }


def model_label(result: TrainResult) -> str:
    """Which model a run got, as ``train``'s selection names its candidates."""
    config = result.config
    return candidate_label(config.family, config.window, config.residual, config.smoothing)


def describe_settings(config: TrainConfig, *, quantile: float) -> str:
    """``default TrainConfig``, or the options that differ from it. Layer sizes are left out:
    the benchmark never sets them, and resolved defaults depend on the dataset's width."""
    reference = asdict(TrainConfig())
    changed = [
        f"{name}={value}"
        for name, value in asdict(config).items()
        if name not in ("hidden", "latent", "quantile") and value != reference[name]
    ]
    head = f"TrainConfig with {', '.join(changed)}" if changed else "default TrainConfig"
    return f"{head} (threshold quantile {quantile:g}, set by the protocol)"


def render_table(table: Table) -> str:
    lines = [table.title, "", *markdown_table(table.columns, table.rows, table.digits)]
    if table.note:
        lines += ["", table.note]
    return "\n".join(lines)


SELECTED_SETTINGS = (
    "chosen for each model as `train` chooses by default (--family auto --smoothing auto: "
    "faults injected into the training data's calibration part; see docs/training.md)"
)


def train_as_default(
    values: np.ndarray,
    sensors: list[str],
    config: TrainConfig,
    *,
    select_model: bool,
    calibration_values: np.ndarray | None = None,
    calibration_source: str | None = None,
    progress: Callable[[EpochRecord, int], None] | None = None,
    families: Sequence[str] | None = None,
) -> TrainResult:
    """The model ``python -m models train`` would make (a short run without separate
    calibration data gets its threshold from out-of-time errors, models/out_of_time.py).
    With ``select_model``, its default ``--family auto --smoothing auto``: candidates
    chosen on faults injected into the calibration data at the CLI's own threshold
    quantile, then the winner trained again with the protocol's quantile
    (``config.quantile``, which moves only the threshold); the ranking is kept in
    ``metrics["selection"]``. ``families``: chosen as ``train --families`` chooses, among
    those families only. Without ``select_model``, ``config`` as given."""
    if families is not None and not select_model:
        raise ValueError("families choose among candidates: they need select_model")
    if not select_model:
        result = train(
            values,
            sensors,
            config,
            calibration_values=calibration_values,
            calibration_source=calibration_source,
            progress=progress,
        )
        return result if calibration_values is not None else calibrate_out_of_time(result, values)
    chosen = select(
        values,
        sensors,
        replace(config, quantile=TrainConfig().quantile),
        calibration_values=calibration_values,
        calibration_source=calibration_source,
        families=families,
    )
    result = train(
        values,
        sensors,
        replace(chosen.result.config, quantile=config.quantile),
        calibration_values=calibration_values,
        calibration_source=calibration_source,
        progress=progress,
    )
    result.metrics["selection"] = chosen.summary()
    return result if calibration_values is not None else calibrate_out_of_time(result, values)
