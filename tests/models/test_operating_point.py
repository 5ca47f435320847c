"""The declared score smoothing and the threshold set on smoothed calibration scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.events import AlertRule
from models.export import export_artifact
from models.inject import Fault
from models.injected import InjectedRun
from models.operating_point import operating_point, parse_smoothing, score_cap, smooth
from models.selection import split_false_alarms, weigh_smoothings
from models.threshold import estimate_threshold
from models.train import TrainConfig, train
from service.scoring.artifact import ArtifactError, load_artifact
from service.scoring.manifest import ScoreSmoothing
from service.scoring.smoothing import make_smoother
from tests.models.test_linear import ar_process


@pytest.mark.parametrize("spec", ["median:3", "mean:4", "ewma:0.3"])
def test_smoothing_is_the_services_own(spec: str) -> None:
    scores = np.random.default_rng(0).gamma(2.0, size=200)
    how = parse_smoothing(spec)
    service = make_smoother(how)
    one_by_one = [service.update(x) for x in scores]
    np.testing.assert_allclose(smooth(scores, how), one_by_one)


@pytest.mark.parametrize("spec", ["ewma", "ewma:0", "ewma:2", "median:0", "median:x", "kalman:3"])
def test_a_smoothing_that_cannot_be_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="smoothing"):
        parse_smoothing(spec)
    with pytest.raises(ValueError, match="smoothing"):
        TrainConfig(smoothing=spec)


def test_the_threshold_is_the_quantile_of_smoothed_calibration_scores(tmp_path: Path) -> None:
    process = ar_process(1600, 4, seed=0)
    sensors = [f"s{i}" for i in range(4)]
    config = TrainConfig(family="dpca", window=2, smoothing="ewma:0.2")
    result = train(process[:1000], sensors, config, calibration_values=process[1000:])
    smoothed = smooth(result.calibration_errors.mean(axis=1), parse_smoothing("ewma:0.2"))
    assert result.threshold.value == estimate_threshold(smoothed, 0.99, source="x").value
    raw = result.with_smoothing("none")
    assert raw.threshold.value > result.threshold.value  # smoothing narrows the tail
    assert raw.config.smoothing == "none" and result.config.smoothing == "ewma:0.2"

    manifest = export_artifact(
        result, tmp_path / "m" / "1", name="m", version="1", training_data_sha256="0" * 64
    )
    assert manifest.smoothing is not None and manifest.smoothing.label() == "ewma:0.2"
    assert load_artifact(tmp_path / "m" / "1").manifest.smoothing == manifest.smoothing

    # The smoothing is part of what the weights and threshold were made for: a manifest that
    # declares another is refused, as an edited threshold is.
    path = tmp_path / "m" / "1" / "manifest.json"
    edited = json.loads(path.read_text())
    edited["smoothing"] = {"method": "none", "window": 1, "alpha": 1.0}
    path.write_text(json.dumps(edited))
    with pytest.raises(ArtifactError, match="smoothing"):
        load_artifact(tmp_path / "m" / "1")


def test_a_smoothing_that_holds_excursions_too_long_is_not_chosen() -> None:
    """Two halves of a clean run with different levels: a long EWMA carries the second
    half's excursion above the first half's limit for longer, so its split-half false
    alarms exceed the slack and it is passed over even though it catches more faults."""
    rng = np.random.default_rng(0)
    clean = np.concatenate([rng.gamma(2.0, size=600), 1.6 * rng.gamma(2.0, size=600)])
    faulty = clean.copy()
    faulty[600:] += 2.0
    run = InjectedRun(clean, [(Fault("bias", 0, 600, 1.0), faulty)], window=1)
    long_memory = split_false_alarms(clean, "ewma:0.05", 0.99)
    assert long_memory > 2 * 0.01
    chosen = weigh_smoothings(run, TrainConfig(quantile=0.99), ("none", "ewma:0.05"), 0.0)
    assert chosen.config.smoothing == "none"


def test_a_smoothing_whose_threshold_train_would_refuse_is_never_chosen() -> None:
    """Isolated spikes on a flat score: a median of 3 removes them all, leaving a tail no
    higher than the median; choosing it would make train refuse a model that was fine."""
    rng = np.random.default_rng(0)
    clean = np.ones(2000)
    clean[rng.choice(2000, 30, replace=False)] = 2.0 + rng.random(30)
    faulty = clean.copy()
    faulty[1000:] += 0.3
    run = InjectedRun(clean, [(Fault("bias", 0, 1000, 1.0), faulty)], window=1)
    chosen = weigh_smoothings(run, TrainConfig(), ("median:3", "none"), 0.0)
    assert chosen.config.smoothing == "none"
    alone = weigh_smoothings(run, TrainConfig(), ("median:3",), 0.0)
    assert alone.detection == {} and alone.mean_detection == 0.0


@pytest.mark.parametrize("alpha", [0.5, 0.3, 0.1])
def test_one_reading_at_the_cap_cannot_raise_an_alert_alone(alpha: float) -> None:
    """On top of a typical level, a score at the cap keeps an EWMA above the threshold for
    fewer readings than the default rule's k; a larger one, uncapped, for k or more."""
    how = ScoreSmoothing(method="ewma", alpha=alpha)
    typical, threshold, k = 1.0, 2.0, AlertRule().k
    cap = score_cap(how, typical, threshold)
    assert cap is not None and cap > threshold

    def above(value: float) -> int:
        smoother = make_smoother(how)
        smoother.update(typical)
        held = [smoother.update(value)] + [smoother.update(typical) for _ in range(30)]
        return sum(x > threshold for x in held)

    assert above(cap) <= k - 1
    assert above(4 * cap) >= k
    mean = ScoreSmoothing(method="mean", window=4)
    assert score_cap(mean, typical, threshold) == typical + 4 * (threshold - typical)
    assert score_cap(ScoreSmoothing(method="median", window=3), typical, threshold) is None


def test_a_capped_operating_point_is_what_the_service_flags() -> None:
    rng = np.random.default_rng(0)
    scores = rng.gamma(2.0, size=4000)
    scores[::250] += 60.0  # glitches, each held up by the EWMA
    how = parse_smoothing("ewma:0.3")
    plain = operating_point([scores], how, 0.99, source="x")
    capped = operating_point([scores], how, 0.99, source="x", capped=True)
    assert plain.smoothing.cap is None and capped.smoothing.cap is not None
    assert capped.smoothing.cap > 1 and capped.threshold.value < plain.threshold.value
    threshold = capped.threshold.value
    # The service smooths error / threshold with the manifest's smoothing, cap included.
    service = make_smoother(capped.smoothing).update_many(scores / threshold)
    np.testing.assert_allclose(service * threshold, capped.smooth(scores), rtol=1e-12)
    assert threshold == np.quantile(capped.smooth(scores), 0.99, method="higher")
    with pytest.raises(ValueError, match="needs the threshold"):
        smooth(scores, capped.smoothing)
