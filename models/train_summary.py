"""What ``python -m models train`` tells its user on stderr: each epoch, each candidate of the
selection, and the summary of the model written (its shape, threshold, every warning)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from models.fitting import EpochRecord
from models.inputs import JUMP_FLOOR
from models.lone_spike import LoneSpikeCheck
from models.selection_rule import CandidateScore, candidate_label
from models.smoothing_choice import split_allowance
from models.train import TrainResult
from models.train_config import LINEAR_FAMILIES


def print_epoch(record: EpochRecord, budget: int) -> None:
    width = len(str(budget))
    print(
        f"epoch {record.epoch:>{width}}/{budget}  train loss {record.train_loss:.5f}  "
        f"val loss {record.val_loss:.5f}  ({record.seconds:.2f} s)",
        file=sys.stderr,
        flush=True,
    )


def print_candidate(score: CandidateScore) -> None:
    allowed = split_allowance(score.config.quantile)
    if not score.detection:  # no threshold, so no rates and no split-half figure either
        found = "left a threshold train refuses at every smoothing"
    else:
        found = (
            f"catches {_caught(score.mean_detection, score.mean_delay, 6, 5)}, "
            f"{score.multiply_adds:,} multiply-adds a "
            f"reading, {score.split_false_alarms:5.1%} split-half false alarms"
            + (f" (above the {allowed:.1%} allowed)" if score.split_false_alarms > allowed else "")
            + (", a lone spike pages at every smoothing" if score.glitch_pages else "")
        )
    print(
        f"  {score.label:<34} {found} ({score.seconds:.1f} s)",
        file=sys.stderr,
        flush=True,
    )


def _caught(detection: float, delay: float, rate_width: int, delay_width: int) -> str:
    """The share of injected faults caught and how soon; a candidate that caught none has
    no delay to give (its mean is the penalty every unflagged fault counts)."""
    if detection == 0.0:
        return f"{'none':>{rate_width}} of the injected faults"
    return f"{detection:{rate_width}.1%} of injected faults after {delay:{delay_width}.1f} readings"


def smoothing_choice(score: CandidateScore, n_smoothings: int) -> str:
    """The line for one forced model's smoothing, chosen as selection chooses a candidate's."""
    caught = (
        f"{score.mean_detection:.1%} of faults injected into the calibration run after "
        f"{score.mean_delay:.1f} readings on average"
        if score.mean_detection
        else "none of the faults injected into the calibration run"
    )
    line = (
        f"smoothing {score.config.smoothing}: it catches {caught}, "
        f"chosen among {n_smoothings} smoothings by the selection rule "
        "(split-half false alarms, a lone spike, detection, then delay)"
    )
    if score.glitch_pages:
        config = score.config
        line += "; a lone spike on one sensor pages at every smoothing" + (
            ": train --glitch-guard, or a one-reading model (--window 1), keeps a glitch "
            "from paging (docs/training.md)"
            if config.window > 1 and not config.glitch_guard
            else ", past the glitch guard (a spike within the training run's own largest "
            "jump): a one-reading model (--window 1) keeps a glitch from paging, at the "
            "price of the dynamic faults a window catches (docs/evaluation.md)"
            if config.window > 1
            else ": the alert rule counts it even unsmoothed (docs/evaluation.md)"
        )
    return line


def _ranking_lines(ranking: Sequence[Mapping[str, Any]]) -> list[str]:
    """The candidates as the rule ranked them: the winner, then by detection, each with the
    step of the rule that passed it over."""
    lines = ["ranking (the winner, then by detection; the rule's step that passed each over):"]
    for place, row in enumerate(ranking, start=1):
        label = candidate_label(row["family"], row["window"], row["residual"], row["smoothing"])
        clean = f"(clean run {row['clean_flagged']:.1%})"
        found = (
            (
                f"{row['mean_detection']:6.1%} {clean} after {row['mean_delay']:6.1f} readings"
                if row["mean_detection"]
                else f"{'none':>6} {clean}"  # its delay is only the penalty (_caught)
            )
            if row["detection"]
            else "no threshold train accepts"
        )
        lines.append(
            f"  {place:>2}. {label:<34} {found}, {row['multiply_adds']:>9,} multiply-adds  "
            + ("chosen" if row["out_at"] is None else f"out at {row['out_at']}")
        )
    return lines


def _model_lines(result: TrainResult) -> list[str]:
    config = result.config
    lines: list[str] = []
    selection = result.metrics.get("selection")
    if isinstance(selection, dict):
        ranking = selection["ranking"]
        chosen, most = ranking[0], max(row["mean_detection"] for row in ranking)
        caught = (
            f"{chosen['mean_detection']:.1%} of faults injected into the calibration run "
            f"(the most of {len(ranking)} candidates: {most:.1%}) after "
            f"{chosen.get('mean_delay', 0.0):.1f} readings on average"
            if chosen["mean_detection"]
            else "none of the faults injected into the calibration run (the most of "
            f"{len(ranking)} candidates: {most:.1%})"
        )
        lines.append(
            f"chose {config.family} over window {config.window}"
            + (", whitened" if config.residual == "whitened" else "")
            + f", smoothing {config.smoothing}: it caught {caught}, at "
            f"{chosen.get('multiply_adds', 0):,} multiply-adds a reading; the rule: within "
            "one standard error of the best detection, then of the shortest delay, the "
            "cheapest (the process's memory, from its autocorrelation: "
            f"{selection['autocorrelation_window']} readings)"
        )
        lines += _ranking_lines(ranking)
    if config.family in LINEAR_FAMILIES:
        details = result.metrics.get(config.family, {})
        lines.append(
            f"model {config.family} over window {config.window}: "
            f"{details.get('components', '?')} "
            + ("states" if config.family == "cva" else "components")
            + " scored by T², the rest by Q (fitted in closed form)"
        )
        return lines
    if config.family == "conv":
        lines.append(
            f"model conv over window {config.window}: {len(result.sensors)} sensors -> "
            f"{' -> '.join(str(size) for size in _layer_sizes(result)[1:3])} channels at "
            "each reading, and back (kernel 3)"
        )
    lines.append(
        f"stopped after {len(result.history)} epochs; best epoch {result.best_epoch} "
        f"(val loss {result.history[result.best_epoch - 1].val_loss:.5f})"
    )
    whitened = result.metrics.get("whitened")
    if isinstance(whitened, dict):
        lines.append(
            f"residual whitened by its covariance on {whitened['out_of_time_windows']} windows "
            "the network did not learn (each half of the training split scored by a network "
            "trained on the other; their mean squared error "
            f"{whitened['out_of_time_mean_square']:.4g})"
        )
    if config.family == "conv":
        return lines
    vae = result.metrics.get("vae")
    if isinstance(vae, dict):
        lines.append(
            f"variational: {vae['active_latent']} of {config.latent} latent dimensions active"
        )
    lines.append(
        f"model {' -> '.join(str(size) for size in _layer_sizes(result))} "
        f"({config.activation}, window {config.window}"
        + (
            f", linear plane of {result.metrics['plane_components']} components)"
            if "plane_components" in result.metrics
            else ")"
        )
    )
    return lines


def _layer_sizes(result: TrainResult) -> list[int]:
    width = len(result.sensors) * (1 if result.config.family == "conv" else result.config.window)
    hidden = list(result.config.hidden or ())
    return [width, *hidden, result.config.latent or 0, *reversed(hidden), width]


def _guard_lines(result: TrainResult) -> list[str]:
    """What the glitch guard will do, in the units a user can check."""
    if result.glitch_limits is None:
        if result.config.glitch_guard:  # asked for, over one reading
            return ["glitch guard: one reading per input, so nothing to despike"]
        return []
    sds = result.glitch_limits / result.scaler_scale
    low, high = f"{sds.min():.3g}", f"{sds.max():.3g}"
    return [
        "glitch guard: a sensor's value that jumps from both neighbours by more than "
        + (low if low == high else f"{low}-{high}")
        + f" training SDs (its largest training jump, at least {JUMP_FLOOR:g}) is put back to "
        "their mean in the windows after its own"
    ]


def print_summary(
    result: TrainResult,
    files: Mapping[str, object],
    artifact_dir: Path,
    *,
    separate_calibration: bool,
    data_warnings: Sequence[str] = (),
    lone_spike: tuple[LoneSpikeCheck, str] | None = None,
) -> None:
    threshold = result.threshold
    low, high = threshold.false_alarm_rate_ci
    lines = _model_lines(result)
    lines += [
        f"threshold {threshold.value:.6g} = {threshold.quantile:g} quantile of "
        f"{threshold.n_calibration} calibration errors"
        + ("" if result.config.smoothing == "none" else f" smoothed by {result.config.smoothing}")
        + f" ({threshold.source})",
        f"false-alarm rate on calibration {threshold.observed_false_alarm_rate:.2%} in "
        f"{threshold.n_excursions} separate excursion"
        + ("" if threshold.n_excursions == 1 else "s")
        + f" (95% CI {low:.2%}-{high:.2%})",
    ]
    lines += _guard_lines(result)
    lines += [f"WARNING: {warning}" for warning in result.metrics.get("warnings", [])]
    if result.constant_sensors:
        lines.append(
            "constant sensors (scale 1, they only flag a change): "
            + ", ".join(result.constant_sensors)
        )
    if threshold.warning:
        lines.append(f"WARNING: {threshold.warning}")
    out_of_time = result.metrics.get("out_of_time", {})
    if out_of_time.get("applied"):
        lines.append(
            "WARNING: the calibration tail is too short for the quantile, so the threshold "
            "comes from out-of-time errors of the whole run (the tail's would be "
            f"{out_of_time['tail_threshold']:.6g}): it allows for as much drift as half the "
            "run shows, no more; pass --calibration-data with normal readings from another "
            "run or period."
        )
    elif not separate_calibration:
        lines.append(
            "WARNING: the threshold was set on the tail of the training run. Readings of the "
            "same run are more alike than other runs, so expect more false alarms than "
            f"{1 - threshold.quantile:.0%} in production: pass --calibration-data with normal "
            "readings from another run or period."
        )
    if lone_spike is not None:
        check, readings = lone_spike
        lines.append(f"lone spike (on {readings}): {check.message}")
    lines += [f"WARNING: {warning}" for warning in data_warnings]  # the early one has scrolled
    lines.append(f"wrote {artifact_dir}: {', '.join(sorted([*files, 'manifest.json']))}")
    for line in lines:
        print(line, file=sys.stderr)
