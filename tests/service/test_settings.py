"""Settings that contradict each other are refused when the service starts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.settings import Settings


@pytest.mark.parametrize("needed", ["recalibration_min_samples", "drift_min_samples"])
def test_needing_more_normals_than_a_run_samples_is_refused(needed: str) -> None:
    """ANOMALY_RECALIBRATION_MIN_SAMPLES=6000 with the 5000-label window started, and every
    run (or drift check) was insufficient forever, whatever the operators labelled."""
    with pytest.raises(ValidationError, match=f"{needed} \\(6000\\) cannot exceed"):
        Settings(**{needed: 6000, "recalibration_window_labels": 5000})
    assert getattr(Settings(**{needed: 5000, "recalibration_window_labels": 5000}), needed) == 5000
