"""Normal readings flagged far above the threshold's stated rate: said, with the numbers,
and no check reads "ok" on them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.evaluate import OperatingRangeCheck
from models.evaluate_normal import normal_rate_check
from service.scoring.artifact import load_artifact
from service.scoring.manifest import Manifest

BUNDLED = Path(__file__).parents[2] / "models" / "synthetic-plant" / "1"


def _manifest(*, excursions: int | None) -> Manifest:
    """The bundled manifest with a threshold stating 1% (0.5%-2%) on 1000 readings, and as
    many calibration excursions as given (None: not recorded, as in older artifacts)."""
    manifest = load_artifact(BUNDLED).manifest
    threshold = manifest.threshold.model_copy(
        update={"quantile": 0.99, "n_calibration": 1000, "false_alarm_rate_ci": (0.005, 0.02)}
    )
    metrics = {"threshold_observed_false_alarm_rate": 0.01}
    if excursions is not None:
        metrics["threshold_excursions"] = excursions
    return manifest.model_copy(update={"threshold": threshold, "metrics": metrics})


@pytest.mark.parametrize("excursions", [5, None])
def test_a_normal_file_flagged_throughout_is_not_ok(excursions: int | None) -> None:
    check = normal_rate_check(_manifest(excursions=excursions), np.ones(2000, dtype=bool))
    assert not check.ok
    assert check.message.startswith("WARNING: 100.0% of the normal readings flagged (2000 of 2000")
    assert "the threshold states 1.0% (95% interval 0.5%-2.0%)" in check.message
    assert "copying" in check.capacity_advice and "100.0%" in check.capacity_advice
    # The operating-range check cannot read "ok" on such readings, even unmoved = moved.
    wider = OperatingRangeCheck(1.5, 3, 1.0, 1.0, check, "train on more.")
    assert not wider.ok and wider.message.startswith("WARNING:")
    assert "already flagged far above" in wider.message


def test_normal_readings_flagged_about_as_stated_are_ok() -> None:
    rng = np.random.default_rng(0)
    flags = rng.random(2000) < 0.012  # a little above 1%, well inside sampling noise
    check = normal_rate_check(_manifest(excursions=10), flags)
    assert check.ok and check.message.startswith("ok:")
    assert OperatingRangeCheck(1.5, 3, 0.012, 0.013, check, "x").ok


def test_events_are_counted_as_the_calibration_counted_them() -> None:
    """Calibration flags in runs of two (5 events for 10 readings): 30 readings flagged in
    2000 are 15 events in 1000, not 30 in 2000, so the interval is wider."""
    flags = np.zeros(2000, dtype=bool)
    flags[::50][:30] = True
    paired = normal_rate_check(_manifest(excursions=5), flags)
    single = normal_rate_check(_manifest(excursions=10), flags)
    assert paired.share == single.share == 0.015
    assert paired.interval[1] - paired.interval[0] > single.interval[1] - single.interval[0]
