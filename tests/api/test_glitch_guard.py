"""A model with the glitch guard: a one-reading glitch is scored at its own reading only,
whatever batches the stream's readings come in, and its declared cap limits what one score
adds to the smoothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_MODEL, ClientFactory, build_test_artifact

# The test model expects the latest reading to be the mean of the window's earlier ones;
# a score is the mean over 4 sensors of the squared difference (threshold 1).
QUIET = [0.0, 0.0, 0.0, 0.0]
GLITCH = [10.0, 0.0, 0.0, 0.0]  # scores 25 where its window's earlier readings are quiet
RUN = [QUIET, QUIET, QUIET, GLITCH, QUIET, QUIET, QUIET]
LIMITS = [2.0, 2.0, 2.0, 2.0]


async def score(client: Any, readings: list[list[float]], stream: str) -> list[dict[str, Any]]:
    response = await client.post(
        "/v1/score", json={"model": TEST_MODEL, "stream_id": stream, "readings": readings}
    )
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


async def scores_in_batches(client: Any, sizes: list[int], stream: str) -> list[float | None]:
    out: list[float | None] = []
    start = 0
    for size in sizes:
        for result in await score(client, RUN[start : start + size], stream):
            out.append(result.get("score"))
        start += size
    assert start == len(RUN)
    return out


def models_with(tmp_path: Path, **fields: Any) -> Path:
    folder = tmp_path / "models"
    build_test_artifact(folder, window=3, **fields)
    return folder


async def test_a_glitch_is_scored_at_its_own_reading_only(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    plain = await make_client(models_dir=models_with(tmp_path / "plain"))
    assert await scores_in_batches(plain, [7], "s") == pytest.approx(
        [None, None, 0, 25, 6.25, 6.25, 0]  # the glitch stays in the windows that hold it
    )
    guarded = await make_client(models_dir=models_with(tmp_path / "g", glitch_limits=LIMITS))
    expected = [None, None, 0, 25, 0, 0, 0]
    for i, sizes in enumerate(([7], [1] * 7, [2, 3, 2], [4, 1, 2], [3, 4])):
        assert await scores_in_batches(guarded, sizes, f"s{i}") == pytest.approx(expected), sizes


async def test_a_step_is_no_glitch(tmp_path: Path, make_client: ClientFactory) -> None:
    step = [QUIET, QUIET, QUIET, GLITCH, GLITCH, GLITCH]
    scores = {}
    for name, fields in (("plain", {}), ("guarded", {"glitch_limits": LIMITS})):
        client = await make_client(models_dir=models_with(tmp_path / name, **fields))
        scores[name] = [r.get("score") for r in await score(client, step, "s")]
    assert scores["guarded"] == scores["plain"]


async def test_the_declared_cap_limits_what_one_score_adds(
    tmp_path: Path, make_client: ClientFactory
) -> None:
    ewma = {"method": "ewma", "window": 1, "alpha": 0.5}
    smoothed = {}
    for name, smoothing in (("plain", ewma), ("capped", {**ewma, "cap": 2.0})):
        folder = models_with(tmp_path / name, smoothing=smoothing, glitch_limits=LIMITS)
        client = await make_client(models_dir=folder)
        results = await score(client, RUN, "s")
        smoothed[name] = [r["smoothed_score"] for r in results[2:]]
    assert smoothed["plain"] == pytest.approx([0, 12.5, 6.25, 3.125, 1.5625])
    assert smoothed["capped"] == pytest.approx([0, 1.0, 0.5, 0.25, 0.125])

    model = (await client.get(f"/v1/models/{TEST_MODEL}")).json()
    assert model["smoothing"]["cap"] == 2.0 and model["glitch_guard"] is True
    stream = (await client.get("/v1/streams/s", params={"model": TEST_MODEL})).json()
    assert stream["window"] == 3 and stream["readings_buffered"] == 3


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"glitch_limits": [1.0, 1.0]}, "glitch limits must be 4"),
        ({"glitch_limits": [1.0, 1.0, 0.0, 1.0]}, "glitch limits must be 4 positive"),
        ({"smoothing": {"method": "median", "window": 3, "cap": 2.0}}, "needs a mean or an EWMA"),
        ({"smoothing": {"method": "ewma", "alpha": 0.5, "cap": 0.5}}, "above the threshold"),
    ],
)
def test_guard_fields_that_cannot_be_right_are_refused(
    tmp_path: Path, fields: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValueError, match=reason):
        build_test_artifact(tmp_path / "models", window=3, **fields)
