"""What ``train`` prints of each candidate (models/train_summary.py)."""

from __future__ import annotations

import pytest

from models.selection_rule import CandidateScore
from models.smoothing_choice import split_allowance
from models.train_config import TrainConfig
from models.train_summary import print_candidate, smoothing_choice

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


def test_a_candidate_that_caught_nothing_gives_no_delay(capsys: pytest.CaptureFixture[str]) -> None:
    """Its mean delay is the penalty each unflagged fault counts, not a time to detection."""
    score = CandidateScore(CONFIG, {"bias": 0.0}, 0.1, 0.01, delays=(30.0,))
    print_candidate(score)
    line = capsys.readouterr().err
    assert "catches   none of the injected faults," in line
    assert "30.0" not in line
    forced = smoothing_choice(score, 7)
    assert "it catches none of the faults injected into the calibration run, chosen" in forced
    assert "30.0" not in forced


@pytest.mark.parametrize(("pages", "said"), [(True, True), (False, False), (None, False)])
def test_a_forced_models_smoothing_line_says_when_a_glitch_pages_at_every_smoothing(
    pages: bool | None, said: bool
) -> None:
    """``train --family X`` weighs one model's smoothings as selection weighs a candidate's;
    its line says, as a candidate's does, when no smoothing keeps a lone spike from paging
    (and never when the check said no or could not tell)."""
    score = CandidateScore(
        TrainConfig(family="cva", window=8, smoothing="ewma:0.3"),
        {"bias": 0.25},
        0.1,
        0.01,
        delays=(4.0,),
        glitch_pages=pages,
    )
    line = smoothing_choice(score, 7)
    assert line.startswith("smoothing ewma:0.3: it catches 25.0% of faults injected")
    assert "after 4.0 readings" in line and "among 7 smoothings" in line
    assert ("a lone spike on one sensor pages at every smoothing" in line) is said
    assert ("train --glitch-guard" in line) is said


@pytest.mark.parametrize(
    ("window", "guard", "advice", "not_advised"),
    [
        (8, False, "train --glitch-guard", "past the glitch guard"),
        (8, True, "past the glitch guard", "train --glitch-guard"),
        (1, False, "the alert rule counts it", "--window 1"),
    ],
)
def test_the_advice_fits_the_forced_model(
    window: int, guard: bool, advice: str, not_advised: str
) -> None:
    """The guard is advised only to a windowed model without it, a one-reading model only
    to a windowed one."""
    config = TrainConfig(family="conv", window=window, glitch_guard=guard)
    line = smoothing_choice(
        CandidateScore(config, {"bias": 0.5}, 0.1, 0.01, delays=(2.0,), glitch_pages=True), 7
    )
    assert advice in line and not_advised not in line
