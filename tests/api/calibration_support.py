"""Keys and reading generators shared by the feedback, recalibration, drift and auth tests.

They run on the conftest's scripted test model (mean 0, scale 1, window 1), whose per-sensor
squared error is exactly the squared reading: readings drawn as ``noise · N(0, 1)`` have
errors ``noise² · χ²(1)`` per sensor, the same law as its reference sample when noise is 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

N_SENSORS = 4
# The 99th percentile of mean(χ²(1)) over 4 sensors (χ²(4)/4): a threshold matching the law.
CHI2_4_Q99_OVER_4 = 13.2767 / 4

ADMIN_KEY = "admin-6f1c2e9a8b7d4c3e2f1a0b9c8d7e6f5a"
OPERATOR_KEY = "operator-0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"
SCORER_KEY = "scorer-11223344556677889900aabbccddeeff"
API_KEYS: list[dict[str, Any]] = [
    {"name": "alice-admin", "scopes": ["admin"], "key": ADMIN_KEY},
    {"name": "olga-operator", "scopes": ["feedback"], "key": OPERATOR_KEY},
    {"name": "scada-bridge", "scopes": ["score"], "key": SCORER_KEY},
]
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
OPERATOR = {"X-API-Key": OPERATOR_KEY}
SCORER = {"Authorization": f"Bearer {SCORER_KEY}"}


def readings(rng: np.random.Generator, n: int, noise: float = 1.0) -> np.ndarray:
    """Readings whose per-sensor squared errors follow ``noise² · χ²(1)``."""
    return noise * rng.normal(size=(n, N_SENSORS))


def errors_of(values: np.ndarray) -> np.ndarray:
    """Reading errors as the model computes them (float32 squares, mean over sensors)."""
    v = values.astype(np.float32)
    return (v * v).mean(axis=1, dtype=np.float64)
