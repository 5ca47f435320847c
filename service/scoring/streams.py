"""Bounded per-stream state: smoothing, debouncing and the model-window ring buffer.

Capacity (LRU) and idle TTL bound memory whatever the number of distinct streams;
every eviction is reported with its reason so it can be counted.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from service.scoring.decision import AlertDebouncer
from service.scoring.glitches import despike
from service.scoring.smoothing import Smoother

StreamKey = tuple[str, str]  # (model name, stream id)
Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class ModelInputs:
    """A batch's model inputs after a stream's earlier readings."""

    windows: np.ndarray
    """``(s, window, n_sensors)``, C-contiguous: one window per reading that has a full one."""
    warming: int
    """Leading readings of the batch without a full window (``s`` = the others)."""
    glitched: int = 0
    """Readings the glitch guard put a value of back among those the batch makes judgeable:
    a reading is judged once its successor has come, so each is counted once."""


def windows_of(history: np.ndarray, values: np.ndarray, window: int) -> ModelInputs:
    """Model inputs for ``values`` that follow ``history`` (the stream's earlier readings,
    at most ``window - 1``). Pure."""
    batch, n_sensors = values.shape
    if window == 1:
        return ModelInputs(values.reshape(batch, 1, n_sensors), 0)
    combined = np.concatenate((history, values))
    if batch == 1 and len(history) == window - 1:  # a warm stream's next reading
        return ModelInputs(combined[np.newaxis], 0)  # its one window, a fresh array already
    warming = min(batch, window - 1 - len(history))
    if warming == batch:
        return ModelInputs(np.empty((0, window, n_sensors), dtype=np.float32), warming)
    view = np.lib.stride_tricks.sliding_window_view(combined, (window, n_sensors))
    return ModelInputs(view[:, 0].copy(), warming)  # a copy: the view is read-only


def guarded_windows_of(
    history: np.ndarray, values: np.ndarray, window: int, limits: np.ndarray
) -> ModelInputs:
    """:func:`windows_of` for a model with the glitch guard (service/scoring/glitches.py):
    every window from the despiked readings but for its latest, which stays as it came.
    ``history`` holds up to ``window`` raw readings, the oldest of which, when it holds that
    many, only serves as its successor's neighbour. Offline scoring (empty ``history``) and
    the service share it. Pure."""
    combined = np.concatenate((history, values))
    clean, replaced = despike(combined, limits)
    # Judged now: the readings whose successor is in ``values``, the last history one first.
    glitched = int(replaced[max(0, len(history) - 1) :].sum())
    if len(values) == 1 and len(history) == window:  # a warm stream's next reading
        # Its one window: the despiked readings after the oldest, which only served as a
        # neighbour; despike keeps the last reading as it came.
        return ModelInputs(clean[np.newaxis, 1:], 0, glitched)
    lead = max(0, len(history) - (window - 1))
    inputs = windows_of(clean[lead : len(history)], clean[len(history) :], window)
    if len(inputs.windows):
        inputs.windows[:, -1] = values[inputs.warming :]  # each window's latest as it came
    return ModelInputs(inputs.windows, inputs.warming, glitched)


def input_windows(
    history: np.ndarray, values: np.ndarray, window: int, limits: np.ndarray | None
) -> ModelInputs:
    """The model's inputs for ``values`` after ``history``: :func:`guarded_windows_of` for a
    model with the glitch guard's ``limits`` (over more than one reading), else
    :func:`windows_of`. Pure."""
    if limits is None or window == 1:
        return windows_of(history, values, window)
    return guarded_windows_of(history, values, window, limits)


def history_rows(window: int, guarded: bool) -> int:
    """Raw readings a stream keeps between requests: the ``window - 1`` before the next one,
    and with the glitch guard one more, the oldest one's predecessor, to judge it on."""
    return window if guarded and window > 1 else window - 1


class StreamState:
    """What one stream remembers between requests."""

    __slots__ = (
        "artifact", "debouncer", "filled", "last_seen", "limits", "model_version", "revision",
        "smoother", "unit", "window", "window_buffer",
    )  # fmt: skip

    def __init__(
        self,
        smoother: Smoother,
        debouncer: AlertDebouncer,
        *,
        window: int,
        n_sensors: int,
        model_version: str,
        now: float,
        limits: np.ndarray | None = None,
        unit: float = 1.0,
        artifact: str = "",
    ) -> None:
        self.smoother = smoother
        # The artifact that began the stream (LoadedModel.fingerprint; "": not known).
        self.artifact = artifact
        # The threshold the smoother's scores were divided by (see in_units).
        self.unit = unit
        self.debouncer = debouncer
        self.model_version = model_version
        self.window = window
        # The glitch guard's jump limits (float32, one per sensor), when the model has them.
        self.limits = limits if window > 1 else None
        # The last window-1 readings (oldest first; with the guard one more); only the last
        # `filled` rows are real.
        rows = history_rows(window, self.limits is not None)
        self.window_buffer = np.zeros((rows, n_sensors), dtype=np.float32)
        self.filled = 0
        self.last_seen = now
        self.revision = ""  # shared state: the Redis write this copy came from

    def in_units(self, threshold: float) -> None:
        """Puts the smoother's scores over ``threshold``: after a threshold change, the scores
        it remembers were divided by the former one, and mixing the two would move a smoothed
        score (and an alert) by the change itself, not by the readings."""
        if threshold != self.unit:
            self.smoother.rescale(self.unit / threshold)
            self.unit = threshold

    def belongs_to(self, version: str, fingerprint: str) -> bool:
        """Whether this state was begun by the model version and artifact given (a state from
        a service that did not record the artifact is taken as its version's)."""
        return self.model_version == version and (
            not self.artifact or not fingerprint or self.artifact == fingerprint
        )

    def windows(self, values: np.ndarray) -> ModelInputs:
        """Model inputs for a batch after the stream's readings so far.

        Pure: the buffer changes only in :meth:`push`, after the model has scored.
        """
        capacity = len(self.window_buffer)
        if capacity == 0:  # windows_of's first case, inline: single readings' hot path
            batch, n_sensors = values.shape
            return ModelInputs(values.reshape(batch, 1, n_sensors), 0)
        full = self.filled == capacity
        history = self.window_buffer if full else self.window_buffer[capacity - self.filled :]
        return input_windows(history, values, self.window, self.limits)

    @property
    def context(self) -> int:
        """Readings held that the next window can use (at most ``window - 1``)."""
        return min(self.filled, self.window - 1)

    def push(self, values: np.ndarray) -> None:
        capacity = len(self.window_buffer)
        if capacity == 0:
            return
        take = min(capacity, len(values))
        self.window_buffer = np.concatenate((self.window_buffer[take:], values[-take:]))
        self.filled = min(capacity, self.filled + len(values))


class StreamView(Protocol):
    """Where the pipeline reads a stream's state before scoring and puts it back after."""

    clock: Clock

    def peek(self, key: StreamKey) -> StreamState | None: ...

    def commit(self, key: StreamKey, state: StreamState) -> None: ...


class StreamStates:
    """LRU map of stream states with an idle TTL; the injected clock makes expiry testable."""

    def __init__(
        self,
        capacity: int,
        idle_ttl_s: float,
        *,
        on_evict: Callable[[str, int], None] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.idle_ttl_s = idle_ttl_s
        self.on_evict = on_evict
        self.clock = clock
        self._states: OrderedDict[StreamKey, StreamState] = OrderedDict()

    def __len__(self) -> int:
        return len(self._states)

    def __contains__(self, key: object) -> bool:
        return key in self._states

    def peek(self, key: StreamKey) -> StreamState | None:
        """The live state of a stream without touching recency (None if absent or idle)."""
        state = self._states.get(key)
        if state is None or self.clock() - state.last_seen > self.idle_ttl_s:
            return None
        return state

    def commit(self, key: StreamKey, state: StreamState) -> None:
        """Record that a stream was just served (inserting it if new) and enforce the bounds."""
        now = self.clock()
        state.last_seen = now
        states = self._states
        previous = states.get(key)
        if previous is not None:
            states.move_to_end(key)
            if previous is not state:  # it had gone idle: peek() hid it, this replaces it
                self._evicted("ttl", 1)
        states[key] = state
        self._expire(now)
        over = len(states) - self.capacity
        if over > 0:
            for _ in range(over):
                states.popitem(last=False)
            self._evicted("lru", over)

    def expire(self) -> int:
        """Drop idle streams now (also done on every commit); returns how many went."""
        return self._expire(self.clock())

    def _expire(self, now: float) -> int:
        states = self._states
        cutoff = now - self.idle_ttl_s
        dropped = 0
        # Least recently used first, so the idle ones sit at the front.
        while states:
            key, oldest = next(iter(states.items()))
            if oldest.last_seen >= cutoff:
                break
            del states[key]
            dropped += 1
        if dropped:
            self._evicted("ttl", dropped)
        return dropped

    def drop(self, key: StreamKey) -> bool:
        """Forget one stream (an operator reset); True if it was held."""
        return self._states.pop(key, None) is not None

    def drop_model(self, model: str) -> int:
        """Forget a model's streams (its sensors or window changed on reload)."""
        keys = [key for key in self._states if key[0] == model]
        for key in keys:
            del self._states[key]
        return len(keys)

    def _evicted(self, reason: str, count: int) -> None:
        if self.on_evict is not None:
            self.on_evict(reason, count)
