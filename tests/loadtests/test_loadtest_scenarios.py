"""What the scenarios send (loadtests/scenarios.py)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from loadtests.payloads import SensorSpace
from loadtests.scenarios import SCENARIOS, RunConfig


def space(window: int) -> SensorSpace:
    return SensorSpace(
        model="m",
        version="1",
        sensors=("a", "b", "c"),
        mean=np.zeros(3),
        scale=np.ones(3),
        window=window,
    )


@pytest.mark.parametrize("window", [1, 4, 20])
def test_the_soak_scores_whatever_the_models_window(window: int) -> None:
    """The soak reaches a stream again only after the state evicted it: a windowed model
    gets its window of readings in each request, so the request scores its last one."""
    templates = SCENARIOS["soak"].build(space(window), RunConfig(), "key")
    assert templates and all(t.readings == window for t in templates)
    body = orjson.loads(templates[0].body)
    if window == 1:
        assert len(body["reading"]) == 3
    else:
        assert len(body["readings"]) == window
