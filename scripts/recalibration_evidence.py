"""How often a recalibration run moves the bundled model's threshold on labels of normal
operation, and on the same labels with their errors scaled (a real shift of the error law):
the table in docs/recalibration.md ("The threshold moves on evidence").

Two further normal runs of the synthetic plant (seeds 4 and 5, 20,000 readings) are scored by
``models/synthetic-plant/2``; each draw labels a stretch of consecutive readings in one request,
or readings picked at random one by one, and runs the candidate rule on them against the
threshold in force. Prints, per case, the runs that moved the threshold (applied or pending) of
``--draws`` and their median relative change. Then the learning freeze: the readings scored in
an alert (the service's default rule, 3 of 5 above the threshold, cool-down 10) kept out of
stretches of labels, and how often the step moves the threshold with them left out of the
measure (as before) and counted both ways (now), at the model's memory and at 5 readings, at
the model's threshold and at 0.85 of it (too low).

    .venv/bin/python scripts/recalibration_evidence.py
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from models.scores import per_sensor_errors  # noqa: E402
from models.synthetic import generate_plant  # noqa: E402
from service.calibration.evidence import (  # noqa: E402
    autocorrelation_time,
    model_memory,
    sample_exceedance,
)
from service.calibration.recalibrator import (  # noqa: E402
    RecalibrationPolicy,
    candidate_threshold,
)
from service.scoring.artifact import load_artifact  # noqa: E402
from service.scoring.decision import ALERT, AlertDebouncer  # noqa: E402
from service.scoring.registry import LoadedModel  # noqa: E402

CASES = (
    ("a stretch of", 200),
    ("a stretch of", 1000),
    ("a stretch of", 5000),
    ("one by one:", 50),
    ("one by one:", 200),
    ("one by one:", 1000),
    ("one by one:", 5000),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=REPO / "models/synthetic-plant/2")
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--confidence", type=float, default=RecalibrationPolicy().confidence)
    args = parser.parse_args()
    artifact = load_artifact(args.model)
    threshold = artifact.manifest.threshold.value
    memory = model_memory(LoadedModel.from_artifact(artifact))
    tau = 1.0 if memory is None else memory.counting(smoothed=False) or 1.0
    runs = []
    for seed in (4, 5):
        errors = per_sensor_errors(artifact, generate_plant(20_000, seed=seed).values)
        reading = errors.mean(axis=1)
        runs.append(reading[np.isfinite(reading)])
        print(f"seed {seed}: {np.mean(runs[-1] > threshold):.2%} of readings above the threshold")
    print(f"memory {tau:.1f} readings, confidence {args.confidence}")
    policy = RecalibrationPolicy(confidence=args.confidence)
    rng = np.random.default_rng(0)
    for scale in (1.0, 1.3, 0.7):
        for kind, length in CASES:
            moved = []
            for _ in range(args.draws):
                run = runs[rng.integers(2)]
                if kind == "a stretch of":
                    start = rng.integers(0, len(run) - length)
                    errors, spans = run[start : start + length], ["one request"] * length
                else:
                    errors, spans = run[rng.choice(len(run), length, replace=False)], None
                labelled = errors * scale  # as time ranges, or carried readings one by one
                seen = sample_exceedance(labelled, threshold, spans=spans, memory=tau)
                candidate = candidate_threshold(labelled, threshold, policy, exceedance=seen)
                if candidate.outcome in ("applied", "pending"):
                    moved.append(candidate.relative_change)
            median = f", median {np.median(moved):+.0%}" if moved else ""
            print(f"x{scale} {kind} {length}: {len(moved)} of {args.draws} moved{median}")
    learning_freeze(runs, threshold, tau, policy, args.draws, rng)


def learning_freeze(
    runs: list[np.ndarray],
    threshold: float,
    tau: float,
    policy: RecalibrationPolicy,
    draws: int,
    rng: np.random.Generator,
) -> None:
    """Stretches labelled as a time range, the readings scored in an alert frozen; at the
    model's threshold and at 0.85 of it (too low: more readings above it than 1%)."""
    for level in (1.0, 0.85):
        in_force = threshold * level
        alerts = []
        for seed, run in zip((4, 5), runs, strict=True):
            states, _ = AlertDebouncer(k=3, n=5, cooldown=10).update_many(run / in_force)
            alerts.append(states == ALERT)
            above = run > in_force
            print(
                f"threshold x{level}, seed {seed}: {above.mean():.2%} of readings above it, "
                f"{alerts[-1].mean():.2%} in an alert, holding "
                f"{above[alerts[-1]].sum() / above.sum():.0%} of those above; outside alerts "
                f"{above[~alerts[-1]].mean():.2%} lie above it; whether a reading lies above "
                f"it remembers {autocorrelation_time(above.astype(float)):.0f} readings"
            )
        for memory in (tau, 5.0):
            for length in (1000, 5000):
                moved = frozen_stretches(runs, alerts, in_force, memory, length, policy, draws, rng)
                said = "; ".join(
                    f"{name} {len(m)}" + (f" (median {np.median(m):+.0%})" if m else "")
                    for name, m in moved.items()
                )
                print(
                    f"freeze, threshold x{level}, memory {memory:.1f}, a stretch of {length}: "
                    f"moved of {draws}: {said}"
                )


def frozen_stretches(
    runs: list[np.ndarray],
    alerts: list[np.ndarray],
    in_force: float,
    memory: float,
    length: int,
    policy: RecalibrationPolicy,
    draws: int,
    rng: np.random.Generator,
) -> dict[str, list[float]]:
    """The relative moves of the runs that moved the threshold: as before (the frozen
    readings left out of the measure) and now (counted both ways); neither weighs the
    candidate, and with every label from the range each counts once."""
    moved: dict[str, list[float]] = {"frozen left out": [], "counted both ways": []}
    for _ in range(draws):
        which = rng.integers(2)
        start = rng.integers(0, len(runs[which]) - length)
        errors = runs[which][start : start + length]
        frozen = alerts[which][start : start + length]
        kept = errors[~frozen]
        spans = ["one request"] * kept.size
        seen = sample_exceedance(kept, in_force, spans=spans, memory=memory)
        both = sample_exceedance(errors, in_force, spans=["one request"] * length, memory=memory)
        steps = {
            "frozen left out": candidate_threshold(kept, in_force, policy, exceedance=seen),
            "counted both ways": candidate_threshold(
                kept, in_force, policy, exceedance=replace(seen, with_frozen=both)
            ),
        }
        for name, step in steps.items():
            if step.outcome in ("applied", "pending"):
                moved[name].append(step.relative_change)
    return moved


if __name__ == "__main__":
    main()
