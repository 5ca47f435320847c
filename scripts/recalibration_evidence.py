"""How often a recalibration run moves the bundled model's threshold on labels of normal
operation, and on the same labels with their errors scaled (a real shift of the error law):
the table in docs/recalibration.md ("The threshold moves on evidence").

Two further normal runs of the synthetic plant (seeds 4 and 5, 20,000 readings) are scored by
``models/synthetic-plant/2``; each draw labels a stretch of consecutive readings in one request,
or readings picked at random one by one, and runs the candidate rule on them against the
threshold in force. Prints, per case, the runs that moved the threshold (applied or pending) of
``--draws`` and their median relative change.

    .venv/bin/python scripts/recalibration_evidence.py
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from models.scores import per_sensor_errors  # noqa: E402
from models.synthetic import generate_plant  # noqa: E402
from service.calibration.evidence import model_memory, sample_exceedance  # noqa: E402
from service.calibration.recalibrator import (  # noqa: E402
    RecalibrationPolicy,
    candidate_threshold,
)
from service.scoring.artifact import load_artifact  # noqa: E402
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
    tau = 1.0 if memory is None else memory.reading
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


if __name__ == "__main__":
    main()
