"""Per-stream smoothing of normalised scores, so one noisy reading does not flap an alert.

Each smoother is a tiny stateful object in river's style (``update(x)`` then ``get()``)
with ``update_many(xs)`` for the hot path: a batch of a stream's scores is smoothed in
numpy, giving exactly the values a loop of ``update`` calls would.

>>> s = RollingMean(window=3)
>>> [s.update(x) for x in (1.0, 2.0, 3.0, 4.0)]
[1.0, 1.5, 2.0, 3.0]
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import lfilter

from service.scoring.manifest import ScoreSmoothing
from service.settings import Settings

# Below this many scores a plain loop beats numpy's per-call overhead.
_VECTOR_MIN = 16


class Smoother(Protocol):
    def update(self, x: float) -> float: ...

    def get(self) -> float: ...

    def update_many(self, xs: np.ndarray) -> np.ndarray: ...

    def snapshot(self) -> list[float]: ...

    def restore(self, remembered: list[float]) -> None: ...

    def rescale(self, factor: float) -> None:
        """Everything remembered (and the start) times ``factor``: scores divided by a new
        threshold, ``factor`` being the former threshold over the new one."""
        ...


class _LastScores:
    """The last ``window`` scores of a stream; subclasses say how they are summarised.
    ``start``: a new stream's ``window - 1`` scores before its first (see make_smoother);
    None: a young stream is summarised over the scores it has."""

    __slots__ = ("_recent", "_start", "window")

    def __init__(self, window: int, start: float | None = None) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self._start = start
        self._recent: list[float] = self._fresh()  # a list: a deque costs ~600 bytes per stream

    def _fresh(self) -> list[float]:
        return [] if self._start is None else [self._start] * (self.window - 1)

    def update(self, x: float) -> float:
        recent = self._recent
        recent.append(float(x))
        if len(recent) > self.window:
            del recent[0]
        return self.get()

    def get(self) -> float:
        raise NotImplementedError

    def snapshot(self) -> list[float]:
        """What the smoother remembers, for :meth:`restore` in another process."""
        return list(self._recent)

    def restore(self, remembered: list[float]) -> None:
        self._recent = list(remembered[-self.window :]) if remembered else self._fresh()

    def rescale(self, factor: float) -> None:
        self._recent = [value * factor for value in self._recent]
        self._start = None if self._start is None else self._start * factor


class RollingMean(_LastScores):
    """Mean of the last ``window`` scores (fewer while a stream is young)."""

    __slots__ = ()

    def get(self) -> float:
        return sum(self._recent) / len(self._recent) if self._recent else 0.0

    def update_many(self, xs: np.ndarray) -> np.ndarray:
        if len(xs) < _VECTOR_MIN:
            return np.array([self.update(x) for x in xs.tolist()], dtype=np.float64)
        history = np.fromiter(self._recent, dtype=np.float64, count=len(self._recent))
        full = np.concatenate((history, xs.astype(np.float64)))
        sums = np.concatenate(([0.0], np.cumsum(full)))
        end = np.arange(len(history) + 1, len(full) + 1)
        start = np.maximum(end - self.window, 0)
        out = (sums[end] - sums[start]) / (end - start)
        self._recent = full[-self.window :].tolist()
        return out


class RollingMedian(_LastScores):
    """Median of the last ``window`` scores: ignores a lone spike entirely."""

    __slots__ = ()

    def get(self) -> float:
        # Pure Python: for the short windows smoothing uses, faster than np.median.
        ordered = sorted(self._recent)
        size = len(ordered)
        if not size:
            return 0.0
        middle = size // 2
        return ordered[middle] if size % 2 else (ordered[middle - 1] + ordered[middle]) / 2

    def update_many(self, xs: np.ndarray) -> np.ndarray:
        if len(xs) < _VECTOR_MIN:
            return np.array([self.update(x) for x in xs.tolist()], dtype=np.float64)
        history = np.fromiter(self._recent, dtype=np.float64, count=len(self._recent))
        full = np.concatenate((history, xs.astype(np.float64)))
        out = np.empty(len(xs), dtype=np.float64)
        # Positions whose window is not yet full (a young stream) are few: do them one by one.
        young = min(len(xs), max(0, self.window - 1 - len(history)))
        for i in range(young):
            out[i] = np.median(full[: len(history) + i + 1])
        if young < len(xs):
            windows = sliding_window_view(full, self.window)
            first = len(history) + young - self.window + 1
            out[young:] = _median_of_rows(windows[first:])
        self._recent = full[-self.window :].tolist()
        return out


def _median_of_rows(windows: np.ndarray) -> np.ndarray:
    """``np.median(windows, axis=1)``; three values (the default window) by min/max, which
    picks the same middle value without a partition per row."""
    if windows.shape[1] == 3:
        a, b, c = windows[:, 0], windows[:, 1], windows[:, 2]
        result: np.ndarray = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
        return result
    median: np.ndarray = np.median(windows, axis=1)
    return median


class Ewma:
    """Exponentially weighted mean; ``start`` seeds it (see make_smoother), else the first
    score does."""

    __slots__ = ("_start", "_value", "alpha")

    def __init__(self, alpha: float, start: float | None = None) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self._start = start
        self._value: float | None = None

    def update(self, x: float) -> float:
        x = float(x)
        previous = self._start if self._value is None else self._value
        self._value = x if previous is None else self.alpha * x + (1 - self.alpha) * previous
        return self._value

    def get(self) -> float:
        if self._value is None:  # before any score: where it starts, as a mean's padding is
            return 0.0 if self._start is None else self._start
        return self._value

    def snapshot(self) -> list[float]:
        return [] if self._value is None else [self._value]

    def restore(self, remembered: list[float]) -> None:
        self._value = remembered[-1] if remembered else None

    def rescale(self, factor: float) -> None:
        self._value = None if self._value is None else self._value * factor
        self._start = None if self._start is None else self._start * factor

    def update_many(self, xs: np.ndarray) -> np.ndarray:
        if len(xs) < _VECTOR_MIN:
            return np.array([self.update(x) for x in xs.tolist()], dtype=np.float64)
        xs = xs.astype(np.float64)
        previous = self._start if self._value is None else self._value
        if previous is None:
            previous = float(xs[0])
        decay = 1 - self.alpha
        out, _ = lfilter([self.alpha], [1.0, -decay], xs, zi=[decay * previous])
        result = np.asarray(out, dtype=np.float64)
        self._value = float(result[-1])
        return result


def make_smoother(smoothing: ScoreSmoothing, unit: float = 1.0) -> Smoother:
    """A fresh smoother for one stream (``none``: each score as it is), for scores divided by
    ``unit`` (the service's: by the threshold in force).

    A declared ``start`` is where the stream begins, as if it had seen calibration scores
    before its first: seeded by its first score alone, an EWMA or a young mean would carry a
    new stream's first scores unsmoothed, above a threshold set on smoothed scores more often
    than the rate it promises, and one high first score would weigh as much as a lasting
    fault (as after a restart or an eviction, for every stream at once)."""
    start = None if smoothing.start is None else smoothing.start / unit
    if smoothing.method == "none":
        return RollingMean(1)
    if smoothing.method == "mean":
        return RollingMean(smoothing.window, start)
    if smoothing.method == "median":
        return RollingMedian(smoothing.window, start)
    return Ewma(smoothing.alpha, start)


FORGOTTEN = 0.01
"""A start weighing less than this share of a smoothed score is forgotten."""


def scores_remembering_start(smoothing: ScoreSmoothing) -> int:
    """How many of a new stream's first smoothed scores its start still weighs on (at least
    :data:`FORGOTTEN` of them): a mean or median's first ``window - 1``, which pad their
    window with it; an EWMA's first ``k`` with ``(1 - alpha)^k`` not below it. Such a score
    tells more about the start than about its reading.

    >>> [scores_remembering_start(ScoreSmoothing(method=m, window=3, alpha=0.3)) for m in
    ...  ("none", "median", "ewma")]
    [0, 2, 12]
    """
    if smoothing.method == "none":
        return 0
    if smoothing.method in ("mean", "median"):
        return smoothing.window - 1
    if smoothing.alpha >= 1:
        return 0
    return math.ceil(math.log(FORGOTTEN) / math.log(1 - smoothing.alpha)) - 1


def stream_smoothing(settings: Settings, declared: ScoreSmoothing | None) -> ScoreSmoothing:
    """The smoothing a model's streams get: the settings' when they name a method, else the
    model's declared one (its threshold was set for it, and its start), else today's default
    median."""
    if settings.smoothing_method is not None or declared is None:
        method = settings.smoothing_method or "median"
        return ScoreSmoothing(
            method=method, window=settings.smoothing_window, alpha=settings.ewma_alpha
        )
    return declared
