"""Normal readings mostly flagged: said, with the numbers, and no check reads "ok" on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.evaluate import OperatingRangeCheck
from models.evaluate_normal import normal_rate_check
from models.scores import detector_scores
from models.synthetic import generate_plant
from service.scoring.artifact import load_artifact
from service.scoring.manifest import Manifest

BUNDLED = Path(__file__).parents[2] / "models" / "synthetic-plant" / "2"


def _manifest() -> Manifest:
    """The bundled manifest with a threshold stating 1% (0.5%-2%)."""
    manifest = load_artifact(BUNDLED).manifest
    threshold = manifest.threshold.model_copy(
        update={"quantile": 0.99, "false_alarm_rate_ci": (0.005, 0.02)}
    )
    return manifest.model_copy(update={"threshold": threshold})


@pytest.mark.parametrize("flagged", [2000, 1001])
def test_normal_readings_mostly_flagged_are_not_ok(flagged: int) -> None:
    """Flagged throughout or in one block, as long as the typical reading is flagged."""
    flags = np.zeros(2000, dtype=bool)
    flags[:flagged] = True
    check = normal_rate_check(_manifest(), flags)
    assert not check.ok
    assert check.message.startswith(f"WARNING: {flagged / 2000:.1%} of the normal readings flagged")
    assert "the threshold states 1.0% (95% interval 0.5%-2.0%)" in check.message
    assert "says nothing about the model" in check.capacity_advice
    # The operating-range check cannot read "ok" on such readings, even unmoved = moved.
    wider = OperatingRangeCheck(1.5, 3, 1.0, 1.0, check, "train on more.")
    assert not wider.ok and wider.message.startswith("WARNING:")
    assert "most unmoved normal readings are already flagged" in wider.message


@pytest.mark.parametrize("flagged", [0, 30, 1000])
def test_normal_readings_flagged_in_one_stretch_are_a_figure_not_a_warning(flagged: int) -> None:
    """Half the readings in one block is one excursion: how far a rate may move between runs
    depends on how its flags cluster, and one event says little."""
    flags = np.zeros(2000, dtype=bool)
    flags[:flagged] = True
    check = normal_rate_check(_manifest(), flags)
    assert check.ok and check.holds and check.message.startswith("ok:")
    assert OperatingRangeCheck(1.5, 3, check.share, check.share, check, "x").ok


def test_normal_readings_flagged_clearly_above_the_stated_rate_are_warned_about() -> None:
    """A model flagging 30% of its own plant's fresh normal readings read "ok" against a
    stated 1%: under half, so not the capacity verdict's concern, but said, with both
    intervals. Twice the stated rate in separate excursions is not warned about."""
    flags = np.zeros(2000, dtype=bool)
    flags[::10] = True  # 10%, in 200 excursions
    check = normal_rate_check(_manifest(), flags)
    assert check.ok and check.above_stated and not check.holds
    assert check.message.startswith("WARNING: 10.0% of the normal readings flagged")
    assert "the threshold states 1.0% (95% interval 0.5%-2.0%)" in check.message
    assert "own interval (8.7%-11.4%) lies above it" in check.message
    assert "expect more false alarms than stated" in check.message
    twice = np.zeros(2000, dtype=bool)
    twice[::50] = True  # 2%, in 40 excursions: the intervals overlap
    assert normal_rate_check(_manifest(), twice).holds


@pytest.mark.parametrize("seed", [9103, 9104, 12345])
def test_the_bundled_model_on_fresh_normal_runs_is_ok(seed: int) -> None:
    """Fresh runs of its own plant, which it flags at about twice its calibration's rate."""
    artifact = load_artifact(BUNDLED)
    values = generate_plant(5000, seed=seed).values
    flags = detector_scores(artifact, values) > artifact.manifest.threshold.value
    assert normal_rate_check(artifact.manifest, flags).holds
