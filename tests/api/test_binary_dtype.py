"""Raw binary bodies say their dtype: float64 rows, read as float32 because they had the
right byte length, scored as twice as many readings of other values without a word."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import AppClient

OCTETS = {"content-type": "application/octet-stream", "x-stream-id": "pump-7"}
ROWS = np.array([[0.5, 0.0, 0.0, 1.0], [2.0, 0.25, 0.0, 0.0]])


async def scores(client: AppClient, body: bytes, headers: dict[str, str], **params: str) -> Any:
    response = await client.post("/v1/score", content=body, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()["score"]


async def test_float64_rows_score_as_their_float32_twins(client: AppClient) -> None:
    float64 = ROWS.astype("<f8").tobytes()
    as_float32 = await scores(client, ROWS.astype("<f4").tobytes(), OCTETS)
    by_query = await scores(client, float64, OCTETS, dtype="float64")
    by_header = await scores(client, float64, OCTETS | {"x-dtype": "float64"})
    assert as_float32 == by_query == by_header
    assert as_float32 == pytest.approx([(0.25 + 1.0) / 4, (4.0 + 0.0625) / 4])


async def test_an_unknown_dtype_is_refused_naming_it(client: AppClient) -> None:
    body = ROWS.astype("<f8").tobytes()
    response = await client.post("/v1/score", content=body, headers=OCTETS | {"x-dtype": "f64"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "dtype"
    assert "'f64'" in response.json()["detail"]


async def test_a_float64_body_of_the_wrong_length_names_its_dtype(client: AppClient) -> None:
    body = ROWS.astype("<f4").tobytes()  # 32 bytes: one float64 row of 4 sensors is 32 too
    response = await client.post(
        "/v1/score", content=body[:24], headers=OCTETS, params={"dtype": "float64"}
    )
    assert response.status_code == 422
    assert "float64" in response.json()["detail"] and "32 bytes each" in response.json()["detail"]


async def test_the_dtype_parameter_is_documented(client: AppClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    parameters = {p["name"]: p for p in spec["paths"]["/v1/score"]["post"]["parameters"]}
    assert parameters["dtype"]["schema"]["enum"] == ["float32", "float64"]
    assert parameters["dtype"]["schema"]["default"] == "float32"


@pytest.mark.parametrize(
    ("name", "header", "query", "said"),
    [
        ("stream_id", "x-stream-id", "pump-8", "pump-7"),
        ("dtype", "x-dtype", "float64", "float32"),
        ("model", "x-model", "other-plant", "test-plant"),
    ],
)
async def test_query_and_header_saying_different_things_are_refused(
    client: AppClient, name: str, header: str, query: str, said: str
) -> None:
    """Neither wins silently: the caller meant one of them, and the other was a mistake."""
    body = ROWS.astype("<f4").tobytes()
    headers = OCTETS | {header: said}
    response = await client.post("/v1/score", content=body, headers=headers, params={name: query})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == name
    agreeing = await client.post("/v1/score", content=body, headers=headers, params={name: said})
    assert agreeing.status_code == 200, agreeing.text
