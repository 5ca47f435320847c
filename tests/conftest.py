"""Shared fixtures: tiny scripted test artifacts, settings, and apps running their lifespan.

The test model reconstructs the latest reading as the mean of the earlier readings in its
window (or as the training mean when ``window == 1``), so every error is known exactly:
with mean 0 and scale 1, a reading ``v`` scores ``mean(v**2)`` on a window-1 model.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, Protocol

import httpx
import numpy as np
import pytest
import torch
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from service.app import create_app
from service.scoring.artifact import torchscript_deprecation_silenced
from service.scoring.artifact_writer import write_artifact
from service.settings import Settings
from service.state import AppState
from tests.integration.postgres_support import PostgresServer, postgres_server

TEST_MODEL = "test-plant"


class WindowMean(torch.nn.Module):
    """Expects the latest reading to equal the mean of the window's earlier readings."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, window: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.window = window

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.score(x)[0]

    @torch.jit.export
    def score(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latest = x[:, -1, :]
        if self.window == 1:
            expected = self.mean.expand_as(latest).clone()
        else:
            expected = x[:, :-1, :].mean(dim=1)
        z = (latest - expected) / self.scale
        return z * z, expected


def sensor_names(n: int) -> list[str]:
    return [f"s{i}" for i in range(n)]


def build_test_artifact(
    models_dir: Path,
    name: str = TEST_MODEL,
    version: str = "1",
    *,
    window: int = 1,
    n_sensors: int = 4,
    threshold: float = 1.0,
    scale: float = 1.0,
    smoothing: dict[str, Any] | None = None,
    glitch_limits: list[float] | None = None,
    n_calibration: int = 200,
    metrics: dict[str, Any] | None = None,
) -> Path:
    """Write ``models_dir/name/version`` and return the folder; ``smoothing``: the score
    smoothing the manifest declares (none, as artifacts written before it, by default);
    ``glitch_limits``: the glitch guard's (none by default); ``n_calibration``: the
    calibration run's length (the 200 reference rows are all of it by default);
    ``metrics``: what training recorded (nothing by default)."""
    mean = np.zeros(n_sensors)
    scales = np.full(n_sensors, scale)
    with torchscript_deprecation_silenced():
        scripted = torch.jit.script(WindowMean(mean, scales, window))
    reference = np.random.default_rng(0).chisquare(1, size=(200, n_sensors)).astype(np.float32)
    folder = models_dir / name / version
    write_artifact(
        folder,
        scripted=scripted,
        reference_errors=reference,
        manifest_fields={
            "name": name,
            "version": version,
            "sensors": sensor_names(n_sensors),
            "window": window,
            "scaler": {"mean": mean.tolist(), "scale": scales.tolist()},
            "threshold": {
                "value": threshold,
                "quantile": 0.99,
                "n_calibration": n_calibration,
                "source": "scripted test model",
                "false_alarm_rate_ci": (0.004, 0.02),
            },
            "training_data_sha256": "0" * 64,
            **({} if smoothing is None else {"smoothing": smoothing}),
            **({} if glitch_limits is None else {"glitch_limits": glitch_limits}),
            "training": {"kind": "scripted test model"},
            "metrics": {"note": "no training"} if metrics is None else metrics,
        },
    )
    return folder


class ArtifactWriter(Protocol):
    def __call__(
        self,
        models_dir: Path,
        name: str = ...,
        version: str = ...,
        *,
        window: int = ...,
        n_sensors: int = ...,
        threshold: float = ...,
        scale: float = ...,
        smoothing: dict[str, Any] | None = ...,
    ) -> Path: ...


@pytest.fixture
def write_test_artifact() -> ArtifactWriter:
    return build_test_artifact


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    """A models folder holding one window-1, 4-sensor test model with threshold 1.0."""
    folder = tmp_path / "models"
    build_test_artifact(folder)
    return folder


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


class AppClient(httpx.AsyncClient):
    """An HTTP client bound to one app whose lifespan is running."""

    def __init__(self, app: FastAPI) -> None:
        super().__init__(
            transport=httpx.ASGITransport(app=app, raise_app_exceptions=False),
            base_url="http://testserver",
        )
        self.app = app

    @property
    def state(self) -> AppState:
        services: AppState = self.app.state.services
        return services


ClientFactory = Callable[..., Awaitable[AppClient]]


@pytest.fixture
async def make_client(models_dir: Path, tmp_path: Path) -> AsyncIterator[ClientFactory]:
    """``await make_client(**settings)``: a client on a fresh app with its lifespan running
    (closed at teardown). ``client.state`` is the app's :class:`AppState`."""
    async with AsyncExitStack() as stack:

        async def make(registry: CollectorRegistry | None = None, **overrides: Any) -> AppClient:
            overrides.setdefault("models_dir", models_dir)
            overrides.setdefault("store_path", tmp_path / "feedback.sqlite3")
            app = create_app(Settings(**overrides), registry=registry or CollectorRegistry())
            await stack.enter_async_context(app.router.lifespan_context(app))
            return await stack.enter_async_context(AppClient(app))

        yield make


@pytest.fixture
async def client(make_client: ClientFactory) -> AppClient:
    return await make_client()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (skips naming the Debian package when missing)."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres.create_database()
