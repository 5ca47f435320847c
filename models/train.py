"""Training: time-ordered splits, a scaler fitted on the training split only, a (denoising)
autoencoder with early stopping, and a threshold from calibration readings it never saw.

Splits are contiguous and in time order, never random: with sensor data neighbouring
readings are near-copies, so a random split leaks the validation and calibration sets into
training and yields a threshold that is too low (too many false alarms in production).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from models.data import sliding_windows
from models.fitting import (
    EpochRecord,
    ProgressCallback,
    Reconstructor,
    latent_kl,
    posterior_collapse_warning,
    train_network,
)
from models.inputs import (
    REWRITTEN_WARNING,
    check_constant_sensors,
    check_float32_range,
    fit_scaler,
    float32_resolution_warnings,
    jump_limits,
    rewritten_readings,
)
from models.linear import LowRankResidual, QuadraticResidual, fit_cva, fit_dpca
from models.network import (
    PlaneResidualAutoencoder,
    ScoringModule,
)
from models.operating_point import declared, smooth
from models.threshold import ThresholdEstimate, estimate_threshold
from models.train_config import LINEAR_FAMILIES, TrainConfig
from models.variational import ACTIVE_KL, VariationalAutoencoder
from models.whitened import WhitenedResidual, inverse_root, second_moment
from models.windows import golden_windows, score_readings
from service.calibration.evidence import normal_memory
from service.scoring.decision import reading_errors
from service.scoring.manifest import ScoreSmoothing


@dataclass
class TrainResult:
    module: ScoringModule
    """Eager scoring module, in eval mode."""
    config: TrainConfig
    """The resolved config (hidden and latent sizes filled in)."""
    sensors: list[str]
    scaler_mean: np.ndarray
    scaler_scale: np.ndarray
    constant_sensors: list[str]
    threshold: ThresholdEstimate
    splits: dict[str, tuple[int, int]]
    """Reading index ranges [start, stop) of "train", "validation" and, when calibrated on the
    training file's tail, "calibration" (all into the training file)."""
    history: list[EpochRecord]
    best_epoch: int
    calibration_errors: np.ndarray
    """Per-sensor squared errors of the calibration windows, (n_windows, n_sensors)."""
    metrics: dict[str, Any] = field(default_factory=dict)
    golden_inputs: np.ndarray | None = None
    """A few raw calibration windows, (n, window, n_sensors): the artifact's golden sample."""
    glitch_limits: np.ndarray | None = None
    """The glitch guard's per-sensor jump limits (raw units), with ``config.glitch_guard``
    and a window of more than one reading."""

    @property
    def window(self) -> int:
        return self.config.window

    @property
    def smoothing(self) -> ScoreSmoothing:
        """The smoothing the model declares: ``config.smoothing``, started where the scores
        its threshold was set on, its calibration errors', sit (models/operating_point.py).
        Derived, not stored: whatever replaces the settings or those errors moves it too."""
        return declared(self.config.smoothing, reading_errors(self.calibration_errors))

    def with_smoothing(self, spec: str) -> TrainResult:
        """This model with the threshold set again on calibration scores smoothed by
        ``spec``: the same weights, another operating point."""
        config = replace(self.config, smoothing=spec)
        scores = reading_errors(self.calibration_errors)
        smoothed = smooth(scores, declared(spec, scores))
        threshold = estimate_threshold(smoothed, config.quantile, source=self.threshold.source)
        metrics = {
            **self.metrics,
            # The memory of the scores and of their exceedances is that of this smoothing's.
            "normal_memory": asdict(
                normal_memory(self.calibration_errors, smoothed, threshold.value)
            ),
            "threshold_observed_false_alarm_rate": threshold.observed_false_alarm_rate,
            "threshold_false_alarm_rate_ci": list(threshold.false_alarm_rate_ci),
            "threshold_excursions": threshold.n_excursions,
            "threshold_warning": threshold.warning,
        }
        return replace(self, config=config, threshold=threshold, metrics=metrics)


def time_splits(
    n_readings: int, config: TrainConfig, *, separate_calibration: bool
) -> dict[str, tuple[int, int]]:
    """Contiguous [start, stop) ranges in time order: train, validation, then calibration
    (the latter only without a separate calibration file)."""
    calibration = 0 if separate_calibration else round(n_readings * config.calibration_fraction)
    validation = round(n_readings * config.val_fraction)
    train = n_readings - validation - calibration
    splits = {"train": (0, train), "validation": (train, train + validation)}
    if not separate_calibration:
        splits["calibration"] = (train + validation, n_readings)
    for name, (start, stop) in splits.items():
        if stop - start < config.window:
            raise ValueError(
                f"the {name} split has {stop - start} readings, fewer than one window of "
                f"{config.window}: {n_readings} readings are too few for these fractions"
            )
    return splits


def train(
    values: np.ndarray,
    sensors: list[str],
    config: TrainConfig | None = None,
    *,
    calibration_values: np.ndarray | None = None,
    calibration_source: str | None = None,
    progress: ProgressCallback | None = None,
) -> TrainResult:
    """Train on normal readings (time order) and calibrate the threshold.

    Without ``calibration_values`` the threshold comes from the training file's tail; a
    separate normal run is better (see README) and the result's metrics say which was used.
    """
    config = (config or TrainConfig()).resolved(len(sensors))
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(sensors):
        raise ValueError(f"values {values.shape} do not match {len(sensors)} sensors")
    if calibration_values is not None:
        calibration_values = np.asarray(calibration_values, dtype=np.float64)
        if calibration_values.ndim != 2 or calibration_values.shape[1] != len(sensors):
            raise ValueError(
                f"calibration data has shape {calibration_values.shape}, "
                f"expected (n, {len(sensors)}) like the training data"
            )
    check_float32_range(values, sensors, "training")
    if calibration_values is not None:
        check_float32_range(calibration_values, sensors, "calibration")
    splits = time_splits(len(values), config, separate_calibration=calibration_values is not None)
    train_values = values[slice(*splits["train"])]
    val_values = values[slice(*splits["validation"])]
    if calibration_values is None:
        calibration_values = values[slice(*splits["calibration"])]
        calibration_source = calibration_source or "tail of the training data"
    elif calibration_source is None:
        calibration_source = "separate calibration data"

    mean, scale, constant = fit_scaler(train_values, sensors)
    check_constant_sensors(mean, constant, calibration_values, sensors, calibration_source)
    resolution_warnings = float32_resolution_warnings(train_values, scale, sensors, constant)
    n_inputs = config.window * len(sensors)
    if config.family == "autoencoder" and config.latent is not None and config.latent >= n_inputs:
        resolution_warnings.append(
            f"the bottleneck ({config.latent}) is not narrower than the input ({n_inputs} = "
            f"window {config.window} x {len(sensors)} sensors): the autoencoder can learn to "
            "copy its input and reconstruct faults as well as normal readings; use a longer "
            "--window, a smaller --latent, or --family dpca/cva"
        )
    window = config.window
    train_x = _standardised_windows(train_values, mean, scale, window)
    val_x = _standardised_windows(val_values, mean, scale, window)

    extra: dict[str, Any] = {}
    reconstructor: Reconstructor | QuadraticResidual | LowRankResidual | WhitenedResidual
    if config.family in LINEAR_FAMILIES:
        reconstructor, history, best_epoch, extra = _fit_linear(
            train_values, val_values, mean, scale, config
        )
        fitted = extra[config.family]["windows"]
        if fitted <= n_inputs:
            resolution_warnings.append(
                f"{config.family} over {window} readings: its covariance of {n_inputs} inputs "
                f"(window {window} x {len(sensors)} sensors) comes from {fitted} training "
                "windows, so it is singular and the directions those windows do not span are "
                "set by the ridge alone; such a model may flag much of another normal run. "
                "Check it with `models evaluate` on normal readings it was not trained on, "
                "and give more training readings or a shorter --window"
            )
    else:
        network, history, best_epoch = train_network(train_x, val_x, len(sensors), config, progress)
        reconstructor = network
        if config.residual == "whitened":
            residuals = out_of_time_residuals(train_values, sensors, config, scale)
            reconstructor = WhitenedResidual(network, inverse_root(second_moment(residuals)))
            extra["whitened"] = {
                "out_of_time_windows": len(residuals),
                "out_of_time_mean_square": float(np.mean(residuals**2)),
            }
            if len(residuals) < n_inputs:
                resolution_warnings.append(
                    f"residual whitened: its covariance comes from {len(residuals)} out-of-time "
                    f"windows for {n_inputs} inputs, so it is singular and the whitening along "
                    "the directions those windows do not span is set by the ridge alone; use "
                    "more training readings or a shorter --window"
                )

    module = ScoringModule(reconstructor, mean=mean, scale=scale, window=window).eval()
    # Over one reading there is nothing to despike: no limits, and an artifact older
    # services still load.
    limits = jump_limits(train_values, scale) if config.glitch_guard and window > 1 else None
    calibration_errors = score_readings(module, calibration_values, window, limits=limits)
    calibration_scores = reading_errors(calibration_errors)
    smoothing = declared(config.smoothing, calibration_scores)
    smoothed_scores = smooth(calibration_scores, smoothing)
    threshold = estimate_threshold(smoothed_scores, config.quantile, source=calibration_source)
    train_errors = score_readings(module, train_values, window)
    val_errors = score_readings(module, val_values, window)
    best = history[best_epoch - 1]
    metrics: dict[str, Any] = {
        **(
            {}
            if config.family in LINEAR_FAMILIES  # fitted in closed form: no epochs
            else {"epochs_run": len(history), "best_epoch": best_epoch}
        ),
        "train_loss": best.train_loss,
        "val_loss": best.val_loss,
        "train_error_mean": float(train_errors.mean()),
        "val_error_mean": float(val_errors.mean()),
        "calibration_error_mean": float(calibration_errors.mean()),
        # The dependence consecutive normal readings have, which the service's drift test
        # and recalibration count a labelled stretch by (its reference keeps only a sample of
        # this run); the score's is that of what the threshold applies to, the exceedances'
        # that of whether it lies above the threshold.
        "normal_memory": asdict(
            normal_memory(calibration_errors, smoothed_scores, threshold.value)
        ),
        "calibration_error_quantiles": {
            str(q): float(np.quantile(calibration_scores, q)) for q in (0.5, 0.9, 0.95, 0.99)
        },
        "threshold_observed_false_alarm_rate": threshold.observed_false_alarm_rate,
        "threshold_false_alarm_rate_ci": list(threshold.false_alarm_rate_ci),
        "threshold_excursions": threshold.n_excursions,
        "threshold_warning": threshold.warning,
        "calibration_source": calibration_source,
        "n_train_readings": splits["train"][1] - splits["train"][0],
        "n_validation_readings": splits["validation"][1] - splits["validation"][0],
        "n_calibration_readings": int(len(calibration_values)),
        "constant_sensors": constant,
        "warnings": resolution_warnings,
    }
    if isinstance(reconstructor, PlaneResidualAutoencoder):
        metrics["plane_components"] = reconstructor.n_components
    network_part = (
        reconstructor.network if isinstance(reconstructor, WhitenedResidual) else reconstructor
    )
    if isinstance(network_part, VariationalAutoencoder):
        kl = latent_kl(network_part, val_x)
        metrics["vae"] = {
            "active_latent": int((kl > ACTIVE_KL).sum()),
            "latent_kl": [float(v) for v in kl],
        }
        collapse = posterior_collapse_warning(kl.numpy())
        if collapse is not None:
            resolution_warnings.append(collapse)
    if limits is not None:
        rewritten = rewritten_readings(calibration_values, limits)
        metrics["glitch_guard"] = {"calibration_readings_rewritten": rewritten}
        if rewritten > REWRITTEN_WARNING * len(calibration_values):
            resolution_warnings.append(
                f"glitch guard: it rewrote {rewritten} of the {len(calibration_values)} "
                f"calibration readings ({calibration_source}; "
                f"{rewritten / len(calibration_values):.2%}, above the "
                f"{REWRITTEN_WARNING:.1%} a normal run should show): this process moves by "
                "more than the training run's largest jump, and a model over a window flags "
                "its answer to a move the guard took out; train without --glitch-guard, or "
                "on a longer normal run"
            )
    metrics.update(extra)
    return TrainResult(
        module=module,
        config=config,
        sensors=list(sensors),
        scaler_mean=mean,
        scaler_scale=scale,
        constant_sensors=constant,
        threshold=threshold,
        splits=splits,
        history=history,
        best_epoch=best_epoch,
        calibration_errors=calibration_errors,
        metrics=metrics,
        golden_inputs=golden_windows(calibration_values, window),
        glitch_limits=limits,
    )


def out_of_time_residuals(
    train_values: np.ndarray, sensors: list[str], config: TrainConfig, scale: np.ndarray
) -> np.ndarray:
    """Residual windows ``(n, window * n_sensors)``, in the units of ``scale`` (the deployed
    model's standardisation), of each half of the training split (time order) from a network
    with ``config``'s settings trained on the other half (models/whitened.py says why)."""
    half = len(train_values) // 2
    parts = ((train_values[:half], train_values[half:]), (train_values[half:], train_values[:half]))
    fold_config = replace(config, residual="squares", smoothing="none")
    residuals = []
    for fit, scored in parts:
        try:
            fold = train(fit, sensors, fold_config, calibration_values=scored)
        except ValueError as exc:
            # One message for every refusal of a half: during selection the candidate is
            # passed over, as for any candidate this data is too short for.
            raise ValueError(
                f"residual whitened: a network trained on one half of the {len(train_values)} "
                f"training readings could not score the other: {exc}"
            ) from exc
        inputs = _standardised_windows(scored, fold.scaler_mean, fold.scaler_scale, config.window)
        with torch.no_grad():
            standardised = (inputs - fold.module.autoencoder(inputs)).numpy()
        # From the fold's standardisation to the deployed model's, reading by reading.
        ratio = np.tile(fold.scaler_scale / scale, config.window)
        residuals.append(standardised.astype(np.float64) * ratio)
    return np.concatenate(residuals)


def _fit_linear(
    train_values: np.ndarray,
    val_values: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    config: TrainConfig,
) -> tuple[QuadraticResidual | LowRankResidual, list[EpochRecord], int, dict[str, Any]]:
    """DPCA or CVA in closed form on the training split. There are no epochs: the one
    record's losses are the mean squared error per input, as the autoencoder reports them."""
    started = time.perf_counter()
    z_train = (train_values - mean) / scale
    if len(z_train) <= 2 * config.window + 1:
        raise ValueError(
            f"{len(z_train)} training readings are too few for {config.family} with window "
            f"{config.window}"
        )
    fit = (
        fit_cva(z_train, config.window)
        if config.family == "cva"
        else fit_dpca(z_train, config.window, variance=config.variance)
    )
    reconstructor = fit.residual()

    def loss(values: np.ndarray) -> float:
        x = _standardised_windows(values, mean, scale, config.window)
        with torch.no_grad():
            return float(((reconstructor(x) - x) ** 2).mean())

    record = EpochRecord(1, loss(train_values), loss(val_values), time.perf_counter() - started)
    details = {"components": fit.n_components, **fit.details}
    if isinstance(reconstructor, LowRankResidual):  # the rest of R is a multiple of identity
        details["root_rank"] = int(reconstructor.gains.numel())
    return reconstructor, [record], 1, {config.family: details}


def _standardised_windows(
    values: np.ndarray, mean: np.ndarray, scale: np.ndarray, window: int
) -> torch.Tensor:
    z = ((values - mean) / scale).astype(np.float32)
    flat = sliding_windows(z, window).reshape(-1, window * z.shape[1])
    return torch.from_numpy(np.array(flat, dtype=np.float32))  # a copy of the read-only view
