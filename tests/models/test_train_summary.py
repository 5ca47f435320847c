"""What ``train`` prints of each candidate (models/train_summary.py)."""

from __future__ import annotations

import pytest

from models.selection_rule import CandidateScore
from models.train import TrainConfig
from models.train_summary import print_candidate


@pytest.mark.parametrize(("split", "marked"), [(0.015, False), (0.02, False), (0.05, True)])
def test_a_candidate_whose_every_smoothing_carried_badly_says_so(
    split: float, marked: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    """Selection allows twice the quantile's false-alarm rate on the other half of the clean
    run; when no smoothing of a candidate stays within it, the fewest is taken, and said."""
    config = TrainConfig(family="dpca", window=2, quantile=0.99)
    print_candidate(CandidateScore(config, {"bias": 0.5}, 0.1, split))
    line = capsys.readouterr().err
    assert f"{split:.1%} split-half false alarms" in line
    assert ("no smoothing kept them within 2.0%: the fewest taken" in line) is marked
