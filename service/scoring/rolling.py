"""Rolling quantiles of recent reconstruction errors (client_python's Summary has none).

Appending is a slice copy into a ring buffer; quantiles are computed only when asked
(at scrape time) and only if new errors arrived since.
"""

from __future__ import annotations

import numpy as np


class RollingQuantiles:
    """Quantiles over the last ``capacity`` values."""

    __slots__ = ("_buffer", "_cached", "_dirty", "_filled", "_pos", "quantiles")

    def __init__(self, capacity: int, quantiles: tuple[float, ...]) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.quantiles = quantiles
        self._buffer = np.zeros(capacity, dtype=np.float64)
        self._pos = 0
        self._filled = 0
        self._dirty = False
        self._cached: dict[float, float] = {}

    def __len__(self) -> int:
        return self._filled

    def add(self, values: np.ndarray) -> None:
        capacity = len(self._buffer)
        if len(values) >= capacity:
            self._buffer[:] = values[-capacity:]
            self._pos = 0
            self._filled = capacity
        else:
            end = self._pos + len(values)
            if end <= capacity:
                self._buffer[self._pos : end] = values
            else:
                split = capacity - self._pos
                self._buffer[self._pos :] = values[:split]
                self._buffer[: end - capacity] = values[split:]
            self._pos = end % capacity
            self._filled = min(capacity, self._filled + len(values))
        self._dirty = True

    def compute(self) -> dict[float, float]:
        """{quantile: value}; empty until something was added."""
        if self._dirty and self._filled:
            values = np.quantile(self._buffer[: self._filled], self.quantiles)
            self._cached = dict(zip(self.quantiles, values.tolist(), strict=True))
            self._dirty = False
        return self._cached
