"""Event-level figures: the alert rule is the service's, the random baseline is exact."""

from __future__ import annotations

import doctest
from dataclasses import replace

import numpy as np
import pytest

from models import events
from models.events import (
    AlertRule,
    LabelledWindow,
    StreamEvents,
    alert_starts,
    alerting,
    event_figures,
    random_delay,
    random_window_hit,
    smooth,
    windows_from_labels,
)
from service.scoring.decision import ALERT, AlertDebouncer
from service.scoring.manifest import ScoreSmoothing
from service.scoring.smoothing import make_smoother, stream_smoothing
from service.settings import Settings


def test_doctests() -> None:
    assert doctest.testmod(events).failed == 0


def test_default_rule_is_the_services_default_settings() -> None:
    fields = Settings.model_fields
    rule = AlertRule()
    # what the service applies to a model that declares no smoothing of its own
    assert rule.smoothing == stream_smoothing(Settings(), None).method
    assert rule.window == fields["smoothing_window"].default
    assert rule.alpha == fields["ewma_alpha"].default
    assert (rule.k, rule.n, rule.cooldown) == (
        fields["alert_k"].default,
        fields["alert_n"].default,
        fields["alert_cooldown"].default,
    )


@pytest.mark.parametrize("method", ["mean", "median", "ewma"])
@pytest.mark.parametrize(("k", "n", "cooldown"), [(3, 5, 10), (1, 1, 0), (2, 4, 1)])
def test_alerts_are_the_services(method: str, k: int, n: int, cooldown: int) -> None:
    """The pure functions start alerts exactly where the service's smoother and debouncer
    (fed in uneven batches, as a stream is) raise them."""
    rng = np.random.default_rng(7)
    scores = np.exp(rng.normal(-0.3, 0.6, size=3000))
    scores[1000:1040] *= 4  # an event
    rule = AlertRule(method, window=3, alpha=0.5, k=k, n=n, cooldown=cooldown)
    smoother = make_smoother(ScoreSmoothing(method=method, window=3, alpha=0.5))  # type: ignore[arg-type]
    debouncer = AlertDebouncer(k, n, cooldown)
    smoothed, states = [], []
    for batch in np.array_split(scores, [1, 5, 40, 41, 700, 1500]):
        part = smoother.update_many(batch)
        smoothed.append(part)
        states.append(debouncer.update_many(part)[0])
    np.testing.assert_allclose(smooth(scores, rule), np.concatenate(smoothed), rtol=1e-12)
    state = np.concatenate(states)
    raised = np.flatnonzero((state == ALERT) & (np.r_[-1, state[:-1]] != ALERT))
    np.testing.assert_array_equal(alert_starts(scores, rule), raised)
    np.testing.assert_array_equal(alerting(scores, rule), state == ALERT)
    assert raised.size > 0


def test_random_baseline_matches_a_seeded_simulation() -> None:
    rng = np.random.default_rng(0)
    n, length, m = 1000, 50, 8
    placed = rng.integers(0, n, size=(20_000, m))
    inside = (placed >= 300) & (placed < 300 + length)
    hit = inside.any(axis=1)
    assert random_window_hit(n, length, m) == pytest.approx(hit.mean(), abs=0.01)
    first = np.where(inside, placed - 300, length).min(axis=1)[hit]
    assert random_delay(n, length, m) == pytest.approx(first.mean(), rel=0.03)


def test_event_figures_on_a_constructed_stream() -> None:
    windows = [LabelledWindow("s", 100, 200), LabelledWindow("s", 500, 600)]
    stream = StreamEvents(
        "s", 1000, np.array([120, 150, 700, 900]), windows, reading_seconds=3600.0,
        normal_readings=800,
    )  # fmt: skip
    figures = event_figures([stream])
    assert figures.windows_alerted == 0.5  # the first window only
    assert figures.delays == [20]
    assert figures.alerts_outside == 0.5
    assert figures.alerts_outside_random == pytest.approx(0.8)  # windows cover 20%
    assert figures.windows_alerted_random == pytest.approx(1 - 0.9**4)
    assert figures.false_alerts_per_day == pytest.approx(2 / (800 / 24))
    assert figures.per_stream["s"]["alerts_outside"] == 2
    # beside as many alerts at random: 80% of 4 expected outside the windows
    assert figures.false_alerts == 2 and figures.false_alerts_random == pytest.approx(3.2)
    assert figures.false_alerts_per_day_random == pytest.approx(3.2 / (800 / 24))
    assert figures.false_alerts_per_10k == pytest.approx(25.0)
    assert figures.false_alerts_per_10k_random == pytest.approx(40.0)
    untimed = event_figures([replace(stream, reading_seconds=None)])
    assert untimed.false_alerts_per_day is None and untimed.false_alerts_per_day_random is None
    assert untimed.as_dict()["false_alerts_per_10000_normal_readings"] == pytest.approx(25.0)


def test_windows_from_labels_and_rule_guards() -> None:
    assert windows_from_labels("s", np.zeros(5)) == []
    assert [(w.start, w.stop) for w in windows_from_labels("s", np.ones(3))] == [(0, 3)]
    with pytest.raises(ValueError):
        AlertRule(k=6, n=5)
    with pytest.raises(ValueError):
        AlertRule(smoothing="mode")
