"""The separability and capacity rules, applied per kind, on constructed scores."""

from __future__ import annotations

import numpy as np
import pytest

from models.metrics import evaluate_detector
from models.separation import (
    INVISIBLE_ADVICE,
    NO_ADVICE,
    RECONSTRUCTION_ADVICE,
    WINDOW_ADVICE,
    kind_verdict,
    separability,
    separates_by_rule,
    verdict_summary,
)


def _scores(log_mean: float, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(log_mean, 0.5, n)


def test_a_kind_that_separates_is_ok() -> None:
    normal, strong = _scores(0.0, 2000, 0), _scores(2.0, 300, 1)  # d about 4
    verdict = kind_verdict("step", normal, strong, threshold=3.0, auc=0.999)
    assert verdict.verdict == "ok" and verdict.separates
    assert verdict.separability.cohens_d > 2 and verdict.separability.p_value < 0.01
    assert verdict.message.startswith("ok: separates")


def test_a_kind_scored_like_normal_readings_is_not_separated_and_says_what_to_do() -> None:
    normal, same = _scores(0.0, 2000, 0), _scores(0.0, 300, 2)
    verdict = kind_verdict("fault 03", normal, same, threshold=3.0, auc=0.5)
    assert verdict.verdict == "not separated" and not verdict.separates
    assert verdict.message.startswith("NOT SEPARATED")
    assert RECONSTRUCTION_ADVICE in verdict.message and INVISIBLE_ADVICE in verdict.message
    # The PCA baseline is a reference: its figures, and no advice to train anything.
    pca = kind_verdict("fault 03", normal, same, threshold=3.0, auc=0.5, advice=NO_ADVICE)
    assert RECONSTRUCTION_ADVICE not in pca.message and INVISIBLE_ADVICE not in pca.message
    assert "train" not in pca.message and pca.message.endswith("that stand out.")
    unseen = kind_verdict("fault 03", normal, same, threshold=1e9, auc=0.5)
    assert unseen.recall == 0.0 and "none crosses the threshold." in unseen.message


def test_a_kind_that_scores_higher_but_fails_the_rule_is_weak() -> None:
    """Significant (thousands of readings make any shift so) but a small effect: the rule
    needs both, so p alone does not make it ok."""
    normal, shifted = _scores(0.0, 5000, 0), _scores(0.6, 5000, 3)  # d about 1.2
    result = separability(normal, shifted)
    assert result.p_value < 1e-10 and result.cohens_d < 2
    assert not separates_by_rule(result)
    verdict = kind_verdict("drift", normal, shifted, threshold=3.0, auc=0.8)
    assert verdict.verdict == "weak" and WINDOW_ADVICE in verdict.message


def test_a_kind_of_one_reading_is_too_few_to_judge_whatever_its_recall() -> None:
    normal = _scores(0.0, 2000, 0)
    verdict = kind_verdict("spike", normal, np.array([50.0]), threshold=3.0, auc=1.0)
    assert verdict.verdict == "too few" and not verdict.separates
    assert verdict.recall == 1.0 and np.isnan(verdict.separability.p_value)
    assert verdict.message.startswith("TOO FEW READINGS: 1 of this kind")
    assert "p nan" not in verdict.message
    ok = kind_verdict("step", normal, _scores(2.0, 300, 1), threshold=3.0, auc=0.999)
    summary = verdict_summary({"spike": verdict, "step": ok})
    assert summary == "1 of 2 kinds separate by the rule; too few readings to test: spike."


def test_evaluate_detector_applies_the_rules_per_kind_not_pooled() -> None:
    """Pooled, a strong kind hides a missed one; per kind, the verdicts say which is which."""
    normal = _scores(0.0, 2000, 0)
    strong, missed = _scores(3.0, 2000, 1), _scores(0.0, 300, 2)
    scores = np.r_[normal, strong, missed]
    labels = np.r_[np.zeros(2000), np.ones(2300)]
    kinds = np.r_[[""] * 2000, ["spike"] * 2000, ["stuck"] * 300]
    result = evaluate_detector(
        "autoencoder", scores, labels, threshold=3.0, threshold_source="hand", kinds=kinds
    )
    assert result.capacity.ok  # the pooled diagnosis sees nothing wrong
    assert result.verdicts["spike"].verdict == "ok"
    assert result.verdicts["stuck"].verdict == "not separated"
    assert result.verdicts["stuck"].recall == pytest.approx(np.mean(missed > 3.0))
    assert result.verdict_summary == "1 of 2 kinds separate by the rule; not separated: stuck."
    body = result.to_dict()
    assert body["verdicts"]["stuck"]["verdict"] == "not separated"
    assert body["verdict_summary"] == result.verdict_summary
    # Without kinds, every anomalous reading is one kind.
    pooled = evaluate_detector("pca_spe", scores, labels, threshold=3.0, threshold_source="h")
    assert list(pooled.verdicts) == ["anomalous"]


def test_identical_scores_in_a_kind_do_not_break_the_rules() -> None:
    verdict = kind_verdict("flat", np.r_[1.0, 2.0, 1.5], np.r_[9.0, 9.0], threshold=3.0, auc=1.0)
    assert verdict.recall == 1.0
    assert verdict_summary({}) == ""
