"""Recently scored readings, addressable by reading id, for feedback and the review queue.

One chunk per request, held as numpy arrays (no per-reading objects on the hot path);
bounded by a reading count and a retention time. Generated reading ids encode a
sequence number, so they need no index; client-supplied ids go into a dict.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class RecentReading:
    """One scored reading as the service saw it (error None while the stream warmed up)."""

    reading_id: str
    stream_id: str
    model: str
    model_version: str
    timestamp: float  # the client's, else the server's receive time (Unix seconds)
    received_at: float
    error: float | None
    squared_errors: np.ndarray | None  # float32 (n_sensors,)
    values: np.ndarray  # float32 (n_sensors,), raw, in manifest order
    threshold: float
    threshold_version: int
    anomaly: bool
    alert: bool


@dataclass(slots=True)
class ReadingChunk:
    """The readings of one request (rows in request order)."""

    seq_start: int
    ids: list[str] | None  # None: every id is generated from seq_start + row
    stream_id: str
    model: str
    model_version: str
    received_at: float
    timestamps: np.ndarray  # float64 (b,)
    errors: np.ndarray  # float64 (b,), NaN while warming up
    squared: np.ndarray  # float32 (b, n), NaN rows while warming up
    values: np.ndarray  # float32 (b, n)
    threshold: float
    threshold_version: int
    anomaly: np.ndarray  # bool (b,)
    alert: np.ndarray  # bool (b,)

    def __len__(self) -> int:
        return len(self.errors)

    def reading(self, row: int, prefix: str) -> RecentReading:
        error = float(self.errors[row])
        scored = not np.isnan(error)
        return RecentReading(
            reading_id=self.ids[row] if self.ids is not None else f"{prefix}{self.seq_start + row}",
            stream_id=self.stream_id,
            model=self.model,
            model_version=self.model_version,
            timestamp=float(self.timestamps[row]),
            received_at=self.received_at,
            error=error if scored else None,
            squared_errors=self.squared[row].copy() if scored else None,
            values=self.values[row].copy(),
            threshold=self.threshold,
            threshold_version=self.threshold_version,
            anomaly=bool(self.anomaly[row]),
            alert=bool(self.alert[row]),
        )


class RecentReadings:
    """Bounded store of scored readings; lookups are for operators, not the hot path."""

    def __init__(
        self,
        max_readings: int,
        retention_s: float,
        *,
        clock: Callable[[], float] = time.time,
        id_prefix: str | None = None,
    ) -> None:
        if max_readings < 1:
            raise ValueError(f"max_readings must be >= 1, got {max_readings}")
        self.max_readings = max_readings
        self.retention_s = retention_s
        self.clock = clock
        # A per-process token keeps generated ids unique across restarts.
        self.id_prefix = id_prefix if id_prefix is not None else f"r{os.urandom(4).hex()}-"
        self._next_seq = 0
        self._chunks: deque[ReadingChunk] = deque()
        self._client_ids: dict[str, ReadingChunk] = {}
        self._total = 0

    def __len__(self) -> int:
        return self._total

    # --- writing (hot path) -------------------------------------------------------------
    def reserve(self, count: int) -> int:
        """Sequence numbers for a request's readings; generated id = prefix + sequence."""
        start = self._next_seq
        self._next_seq += count
        return start

    def generated_ids(self, seq_start: int, count: int) -> list[str]:
        prefix = self.id_prefix
        return [f"{prefix}{seq}" for seq in range(seq_start, seq_start + count)]

    def add(self, chunk: ReadingChunk) -> None:
        self._chunks.append(chunk)
        self._total += len(chunk)
        if chunk.ids is not None:
            self._client_ids.update(dict.fromkeys(chunk.ids, chunk))
        self._trim()

    def _trim(self) -> None:
        cutoff = self.clock() - self.retention_s
        chunks = self._chunks
        while chunks and (self._total > self.max_readings or chunks[0].received_at < cutoff):
            old = chunks.popleft()
            self._total -= len(old)
            if old.ids is not None:
                index = self._client_ids
                for reading_id in old.ids:
                    if index.get(reading_id) is old:
                        del index[reading_id]

    # --- lookups ------------------------------------------------------------------------
    def get(self, reading_id: str) -> RecentReading | None:
        """The reading with this id if still retained (a reused client id finds the latest)."""
        self._trim()
        chunk = self._client_ids.get(reading_id)
        if chunk is not None and chunk.ids is not None:
            return chunk.reading(chunk.ids.index(reading_id), self.id_prefix)
        if not reading_id.startswith(self.id_prefix):
            return None
        suffix = reading_id[len(self.id_prefix) :]
        if not suffix.isdigit():
            return None
        seq = int(suffix)
        position = bisect_right(self._chunks, seq, key=lambda c: c.seq_start) - 1
        if position < 0:
            return None
        chunk = self._chunks[position]
        row = seq - chunk.seq_start
        if row >= len(chunk) or (chunk.ids is not None and chunk.ids[row] != reading_id):
            return None  # a client id replaced the generated one for this row
        return chunk.reading(row, self.id_prefix)

    def _rows(
        self, since: float | None, model: str | None
    ) -> Iterator[tuple[ReadingChunk, np.ndarray]]:
        """Chunks (newest first) with a mask of their scored rows at or after ``since``."""
        self._trim()
        for chunk in reversed(self._chunks):
            if model is not None and chunk.model != model:
                continue
            mask = ~np.isnan(chunk.errors)
            if since is not None:
                mask &= chunk.timestamps >= since
            yield chunk, mask

    def alerts(
        self,
        *,
        since: float | None = None,
        model: str | None = None,
        limit: int = 100,
        include_anomalies: bool = False,
    ) -> list[RecentReading]:
        """Newest first: readings taken while an alert was active (or also lone anomalies)."""
        found: list[RecentReading] = []
        for chunk, mask in self._rows(since, model):
            flagged = chunk.alert | chunk.anomaly if include_anomalies else chunk.alert
            for row in np.flatnonzero(mask & flagged)[::-1].tolist():
                found.append(chunk.reading(row, self.id_prefix))
                if len(found) >= limit:
                    return found
        return found

    def audit_sample(
        self,
        size: int,
        rng: np.random.Generator,
        *,
        since: float | None = None,
        model: str | None = None,
    ) -> list[RecentReading]:
        """A uniform random sample of unflagged readings (no anomaly, no alert), without
        replacement: the counterweight to reviewing only alerts."""
        candidates: list[tuple[ReadingChunk, int]] = []
        for chunk, mask in self._rows(since, model):
            rows = np.flatnonzero(mask & ~chunk.anomaly & ~chunk.alert).tolist()
            candidates.extend((chunk, row) for row in rows)
        if not candidates or size <= 0:
            return []
        picks = rng.choice(len(candidates), size=min(size, len(candidates)), replace=False)
        return [candidates[i][0].reading(candidates[i][1], self.id_prefix) for i in picks.tolist()]

    def stream_readings(
        self,
        stream_id: str,
        start: float,
        end: float,
        *,
        model: str | None = None,
    ) -> list[RecentReading]:
        """Scored readings of one stream with ``start <= timestamp <= end``, oldest first."""
        found: list[RecentReading] = []
        for chunk, mask in self._rows(None, model):
            if chunk.stream_id != stream_id:
                continue
            rows = np.flatnonzero(mask & (chunk.timestamps >= start) & (chunk.timestamps <= end))
            found.extend(chunk.reading(row, self.id_prefix) for row in rows.tolist())
        found.sort(key=lambda r: (r.timestamp, r.received_at))
        return found

    def scored_errors(
        self, model: str, *, since: float | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Errors ``(m,)`` and per-sensor squared errors ``(m, n)`` of retained scored readings,
        e.g. for drift tests. Empty arrays when there are none."""
        errors: list[np.ndarray] = []
        squared: list[np.ndarray] = []
        for chunk, mask in self._rows(since, model):
            errors.append(chunk.errors[mask])
            squared.append(chunk.squared[mask])
        if not errors:
            return np.empty(0, dtype=np.float64), np.empty((0, 0), dtype=np.float32)
        return np.concatenate(errors[::-1]), np.concatenate(squared[::-1])
