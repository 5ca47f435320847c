"""Decisions on scored readings: normalise by the threshold in force, explain, debounce.

The threshold is read from the :class:`ThresholdBoard` on every request, so a
recalibrated version applies from the next request on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

# Below this many scores a plain loop beats numpy's per-call overhead.
_VECTOR_MIN = 16
# Below this many rows, Python's sort of each row beats building and sorting packed keys.
_PACKED_MIN = 32
_FLOAT32_SIGN = 0x8000_0000
_LOW_WORD = np.uint32(0xFFFF_FFFF)

# Alert states, as small integers on the hot path and names at the edge.
NORMAL, ALERT, COOLDOWN, WARMING_UP, SUPPRESSED = 0, 1, 2, 3, 4
STATE_NAMES: tuple[str, ...] = ("normal", "alert", "cooldown", "warming_up", "suppressed")


@dataclass(frozen=True, slots=True)
class WindowMatch:
    """The maintenance windows a request's readings fall in (ids; None: no such window)."""

    suppressed_by: int | None  # a window with mode suppress_alerts
    excluded_by: int | None  # a window with mode exclude_from_learning


def suppress_alerts(states: np.ndarray, raised: int) -> tuple[np.ndarray, int, int]:
    """Inside a suppress_alerts window the debouncer still runs (so an alert that outlasts
    the window shows when it ends), but its alert states read ``suppressed`` and none is
    raised: returns the states, alerts raised (0) and alerts held back."""
    out = np.where(states == ALERT, np.int8(SUPPRESSED), states).astype(np.int8)
    return out, 0, raised


@dataclass(frozen=True, slots=True)
class Decisions:
    """Per-reading outputs of the instantaneous decision (before smoothing)."""

    errors: np.ndarray  # float64 (b,): mean of the per-sensor squared errors
    scores: np.ndarray  # float64 (b,): error / threshold
    anomalies: np.ndarray  # bool (b,): error > threshold
    top_index: np.ndarray  # int (b, k): sensors by descending contribution
    top_share: np.ndarray  # float64 (b, k): their share of the reading's squared error


def reading_errors(squared_errors: np.ndarray) -> np.ndarray:
    """Each reading's error, the mean of its per-sensor squared errors, as the service
    computes it: summed in float64 (numpy's pairwise sum; no float64 copy of the matrix),
    then divided. Training sets thresholds on errors computed by this function, so a
    calibration reading at the threshold is at it in the service too, not an ulp above.

    >>> reading_errors(np.array([[1.0, 2.0], [0.5, 0.5]], dtype=np.float32)).tolist()
    [1.5, 0.5]
    """
    errors: np.ndarray = squared_errors.sum(axis=1, dtype=np.float64) / squared_errors.shape[1]
    return errors


def decide(squared_errors: np.ndarray, threshold: float, top_k: int) -> Decisions:
    """Errors, normalised scores, flags and top-k contributors for a batch, vectorised."""
    if len(squared_errors) == 1:
        return _decide_one(squared_errors, threshold, top_k)
    totals = squared_errors.sum(axis=1, dtype=np.float64)
    errors = totals / squared_errors.shape[1]  # reading_errors, with the totals kept
    scores = errors / threshold
    k = min(top_k, squared_errors.shape[1])
    top_index, top_values = _top_with_values(squared_errors, k)
    # A reading with zero total error has zero top values: dividing by 1 gives shares of 0.
    shares = top_values / np.where(totals > 0, totals, 1.0)[:, None]
    return Decisions(errors, scores, errors > threshold, top_index, shares)


def _decide_one(squared_errors: np.ndarray, threshold: float, top_k: int) -> Decisions:
    """The same figures for one reading with Python scalars: numpy's per-call overhead
    would cost more than the work. The total is numpy's (pairwise) sum, as for a batch."""
    n_sensors = squared_errors.shape[1]
    total = float(squared_errors[0].sum(dtype=np.float64))
    error = total / n_sensors
    row = squared_errors[0].tolist()
    top = sorted(range(n_sensors), key=row.__getitem__, reverse=True)[: min(top_k, n_sensors)]
    divisor = total if total > 0 else 1.0
    return Decisions(
        np.array([error]),
        np.array([error / threshold]),
        np.array([error > threshold]),
        np.array([top], dtype=np.intp),
        np.array([[row[j] / divisor for j in top]]),
    )


def top_contributors(squared: np.ndarray, k: int) -> np.ndarray:
    """Per row, the indices of the ``k`` largest values, largest first; equal values keep
    sensor order (the lower index first).

    >>> top_contributors(np.array([[0.5, 2.0, 0.5, 1.0]], dtype=np.float32), 3).tolist()
    [[1, 3, 0]]
    """
    return _top_with_values(squared, k)[0]


def _top_with_values(squared: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`top_contributors` and the values there (as float64)."""
    batch, n_sensors = squared.shape
    if batch < _PACKED_MIN:
        # Python's sort is stable, also with reverse=True: ties keep sensor order.
        positions = range(n_sensors)
        rows = [
            sorted(positions, key=row.__getitem__, reverse=True)[:k] for row in squared.tolist()
        ]
        index = np.array(rows, dtype=np.intp).reshape(batch, k)
    elif (
        squared.dtype == np.float32
        and sys.byteorder == "little"  # the keys' word order
        and int(squared.view(np.uint32).max()) < _FLOAT32_SIGN  # no negatives (nor -0.0)
    ):
        return _top_by_packed_keys(squared.view(np.uint32), k)
    else:
        index = _top_by_partition(squared, k)
    return index, np.take_along_axis(squared, index, axis=1).astype(np.float64)


def _top_by_packed_keys(bits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k through one SIMD sort of 64-bit keys: a non-negative float32's bits order like
    the value, and the low word holds the complemented column, so sorting keys sorts
    (value, lower index first) in one pass instead of argpartition plus an argsort of the
    partition, and exact: the value comes back from the key's high word."""
    batch, n_sensors = bits.shape
    words = np.empty((batch, n_sensors, 2), dtype=np.uint32)  # little-endian: (low, high)
    words[:, :, 0] = _LOW_WORD - np.arange(n_sensors, dtype=np.uint32)
    words[:, :, 1] = bits
    keys = words.view(np.uint64).reshape(batch, n_sensors)
    keys.sort(axis=1)
    top = np.ascontiguousarray(
        keys[:, : n_sensors - k - 1 : -1] if k < n_sensors else keys[:, ::-1]
    )
    pairs = top.view(np.uint32).reshape(batch, k, 2)
    index = (_LOW_WORD - pairs[:, :, 0]).astype(np.intp)
    values = pairs[:, :, 1].copy().view(np.float32).astype(np.float64)
    return index, values


def _top_by_partition(squared: np.ndarray, k: int) -> np.ndarray:
    """Any dtype and sign: argpartition, then order the k by value (ties by index)."""
    batch, n_sensors = squared.shape
    if k < n_sensors:
        part = np.sort(np.argpartition(squared, n_sensors - k, axis=1)[:, n_sensors - k :])
    else:
        part = np.broadcast_to(np.arange(n_sensors), squared.shape)
    part_values = np.take_along_axis(squared, part, axis=1)
    order = np.argsort(-part_values, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


class AlertDebouncer:
    """k of the last n smoothed scores above 1.0 raise an alert; after it clears, ``cooldown``
    readings (the clearing one included) pass before another can be raised.

    >>> d = AlertDebouncer(k=2, n=3, cooldown=1)
    >>> states, raised = d.update_many(np.array([1.5, 0.2, 1.4, 0.1, 0.1, 0.1]))
    >>> [STATE_NAMES[s] for s in states], raised
    (['normal', 'normal', 'alert', 'cooldown', 'normal', 'normal'], 1)
    """

    __slots__ = ("_bits", "_count", "_left", "cooldown", "k", "n", "phase")

    def __init__(self, k: int, n: int, cooldown: int) -> None:
        if not 1 <= k <= n:
            raise ValueError(f"need 1 <= k <= n, got k={k}, n={n}")
        if cooldown < 0:
            raise ValueError(f"cooldown must be >= 0, got {cooldown}")
        self.k, self.n, self.cooldown = k, n, cooldown
        self._bits: list[bool] = []  # the last n highs; a list is far smaller than a deque
        self._count = 0
        self._left = 0
        self.phase = NORMAL

    def snapshot(self) -> tuple[list[bool], int, int]:
        """The last n highs, the cool-down readings left and the phase, for :meth:`restore`."""
        return list(self._bits), self._left, self.phase

    def restore(self, bits: list[bool], left: int, phase: int) -> None:
        self._bits = list(bits[-self.n :])
        self._count = sum(self._bits)
        self._left = left
        self.phase = phase

    def update_many(self, smoothed: np.ndarray) -> tuple[np.ndarray, int]:
        """States after each score (int8 codes) and how many alerts were raised."""
        above = smoothed > 1.0
        out = np.empty(len(above), dtype=np.int8)
        if self.phase == NORMAL and self._count + int(above.sum()) < self.k:
            # Not enough highs in history plus batch to reach k anywhere: nothing can fire.
            out.fill(NORMAL)
            self._push_all(above)
            return out, 0
        if len(above) >= _VECTOR_MIN:
            return self._update_segments(above)
        raised = 0
        bits, k, n = self._bits, self.k, self.n
        for i, high in enumerate(above.tolist()):
            if len(bits) == n:
                self._count -= bits.pop(0)
            bits.append(high)
            self._count += high
            if self.phase == ALERT:
                if self._count < k:
                    self.phase = COOLDOWN if self.cooldown else NORMAL
                    self._left = self.cooldown
            elif self.phase == COOLDOWN:
                self._left -= 1
                if self._left <= 0:
                    self.phase = NORMAL
            if self.phase == NORMAL and self._count >= k:
                self.phase = ALERT
                raised += 1
            out[i] = self.phase
        return out, raised

    def _update_segments(self, above: np.ndarray) -> tuple[np.ndarray, int]:
        """The same state machine, vectorised: windowed counts by cumsum, then one step per
        state change instead of one per reading."""
        size = len(above)
        history = np.fromiter(self._bits, dtype=bool, count=len(self._bits))
        bits = np.concatenate((history, above)).astype(np.int32)
        sums = np.concatenate(([0], np.cumsum(bits)))
        end = np.arange(len(history) + 1, len(bits) + 1)
        counts = sums[end] - sums[np.maximum(end - self.n, 0)]
        meets = counts >= self.k
        on = np.flatnonzero(meets)
        off = np.flatnonzero(~meets)
        out = np.empty(size, dtype=np.int8)
        phase, left, raised, i = self.phase, self._left, 0, 0
        while i < size:
            if phase == NORMAL:
                j = int(np.searchsorted(on, i))
                if j == len(on):
                    out[i:] = NORMAL
                    break
                start = int(on[j])
                out[i:start] = NORMAL
                out[start] = ALERT
                phase, raised, i = ALERT, raised + 1, start + 1
            elif phase == ALERT:
                j = int(np.searchsorted(off, i))
                if j == len(off):
                    out[i:] = ALERT
                    break
                clear = int(off[j])
                out[i:clear] = ALERT
                if self.cooldown:
                    out[clear] = COOLDOWN
                    phase, left = COOLDOWN, self.cooldown
                else:
                    out[clear] = NORMAL
                    phase = NORMAL
                i = clear + 1
            else:  # COOLDOWN: every reading counts `left` down; at 0 the stream is normal again
                back = i + left - 1
                if back >= size:
                    out[i:] = COOLDOWN
                    left -= size - i
                    break
                out[i:back] = COOLDOWN
                phase, left, i = NORMAL, 0, back
        self.phase, self._left = phase, left
        self._push_all(above)
        return out, raised

    def _push_all(self, above: np.ndarray) -> None:
        self._bits = (self._bits + above[-self.n :].tolist())[-self.n :]
        self._count = sum(self._bits)
