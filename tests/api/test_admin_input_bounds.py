"""Admin inputs the store cannot hold or the scorer cannot use are 422s, never 500s."""

from __future__ import annotations

from typing import Any

import pytest
from calibration_support import ADMIN, API_KEYS

MODEL = "test-plant"
HUGE = 10**30  # beyond SQLite's 64-bit INTEGER


@pytest.fixture
async def client(make_client: Any) -> Any:
    return await make_client(api_keys=API_KEYS)


@pytest.mark.parametrize("action", ["approve", "reject"])
async def test_pending_ids_beyond_64_bits_are_422(client: Any, action: str) -> None:
    response = await client.post(
        f"/v1/admin/pending-thresholds/{HUGE}/{action}", json={}, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_rollback_to_a_version_beyond_64_bits_is_422(client: Any) -> None:
    response = await client.post(
        f"/v1/admin/thresholds/{MODEL}/rollback", json={"version": HUGE}, headers=ADMIN
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("value", [5e-324, 1e-300, 1e300])
async def test_hand_set_threshold_must_keep_scores_meaningful(client: Any, value: float) -> None:
    """A denormal threshold made every score infinite (null in the reply)."""
    response = await client.post(
        f"/v1/admin/thresholds/{MODEL}", json={"value": value, "reason": "x"}, headers=ADMIN
    )
    assert response.status_code == 422, response.text
    assert "baseline" in response.json()["detail"]
    scored = await client.post("/v1/score", json={"stream_id": "s", "reading": [1, 0, 0, 0]})
    assert scored.json()["result"]["score"] == pytest.approx(0.25)  # threshold 1.0 still


async def test_hand_set_threshold_within_range_is_accepted(client: Any) -> None:
    response = await client.post(
        f"/v1/admin/thresholds/{MODEL}", json={"value": 2e-6, "reason": "x"}, headers=ADMIN
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (f"/v1/admin/thresholds/{MODEL}", {"value": True, "reason": "x"}, "value"),
        (f"/v1/admin/thresholds/{MODEL}", {"value": "0.03", "reason": "x"}, "value"),
        (f"/v1/admin/thresholds/{MODEL}", {"value": 2.0, "reason": 7}, "reason"),
        (f"/v1/admin/thresholds/{MODEL}/rollback", {"version": True}, "version"),
        (f"/v1/admin/thresholds/{MODEL}/rollback", {"version": "1"}, "version"),
        (f"/v1/admin/thresholds/{MODEL}/rollback", {"version": 1.5}, "version"),
    ],
)
async def test_admin_numbers_are_numbers(
    client: Any, path: str, body: dict[str, Any], field: str
) -> None:
    """true once set the threshold to 1.0 and rolled back to version 1."""
    response = await client.post(path, json=body, headers=ADMIN)
    assert response.status_code == 422, response.text
    assert field in response.text
    history = await client.get(f"/v1/admin/thresholds/{MODEL}", headers=ADMIN)
    assert len(history.json()["versions"]) == 1


async def test_a_version_written_as_a_whole_float_is_that_version(client: Any) -> None:
    """JSON has one number type and the schema says integer, which 1.0 is: it was a 422 for
    a request the OpenAPI document calls valid."""
    response = await client.post(
        f"/v1/admin/thresholds/{MODEL}/rollback", json={"version": 1.0}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    assert response.json()["statistics"]["rolled_back_to"] == 1


async def test_a_whole_number_threshold_is_still_a_number(client: Any) -> None:
    response = await client.post(
        f"/v1/admin/thresholds/{MODEL}", json={"value": 2, "reason": "x"}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
