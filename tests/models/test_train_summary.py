"""What ``train`` prints of each candidate (models/train_summary.py)."""

from __future__ import annotations

import pytest

from models.selection import split_allowance
from models.selection_rule import CandidateScore
from models.train_config import TrainConfig
from models.train_summary import print_candidate

CONFIG = TrainConfig(family="dpca", window=2, quantile=0.99)
ALLOWED = split_allowance(CONFIG.quantile)


@pytest.mark.parametrize(("split", "marked"), [(0.015, False), (ALLOWED, False), (0.05, True)])
def test_a_candidate_above_the_split_half_allowance_says_so(
    split: float, marked: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Selection allows split_allowance's false alarms on the other half of the clean run
    (and takes the fewest when no smoothing stays within): the line says which side it is."""
    print_candidate(CandidateScore(CONFIG, {"bias": 0.5}, 0.1, split, delays=(3.0,)))
    line = capsys.readouterr().err
    assert f"{split:.1%} split-half false alarms" in line
    assert "catches  50.0% of injected faults after   3.0 readings" in line
    assert ("(above the 2.0% allowed)" in line) is marked


def test_a_candidate_without_an_accepted_threshold_claims_no_detection(
    capsys: pytest.CaptureFixture[str],
) -> None:
    print_candidate(CandidateScore(CONFIG, {}, 0.1, 1.0))
    line = capsys.readouterr().err
    assert "left a threshold train refuses at every smoothing" in line
    assert "catches" not in line and "readings" not in line and "split-half" not in line
