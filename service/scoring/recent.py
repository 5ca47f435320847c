"""Recently scored readings, addressable by reading id, for feedback and the review queue.

Held as numpy arrays, one chunk per large request or per run of small ones (no
per-reading objects on the hot path); bounded by a reading count and a retention time.
Small requests (single-reading traffic) wait as their :class:`ScoredBatch` and are sealed
together into one chunk, so memory stays near the data itself and the garbage collector
sees few objects. Generated reading ids encode a sequence number, so they need no index;
client-supplied ids go into a dict.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from service.scoring.client_ids import AmbiguousReadingId as AmbiguousReadingId
from service.scoring.client_ids import ClientIds, is_sequence
from service.scoring.decision import ALERT
from service.scoring.scored import ScoredBatch

SMALL_CHUNK = 64  # requests below this many readings wait...
MERGE_RUN = 128  # ...until this many do, then are sealed into one chunk


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
    smoothed: float | None = None  # the stream's smoothed score after it
    # bool (n_sensors,): observed >= reconstructed, when the reply computed reconstructions.
    # With the squared error in standardised units this gives the reconstruction back
    # (observed - sign * scale * sqrt(squared)) at 1 bit a sensor instead of 32.
    above_reconstruction: np.ndarray | None = None
    suppressed_by: int | None = None  # a suppress_alerts maintenance window's id
    excluded_by: int | None = None  # an exclude_from_learning maintenance window's id


@dataclass(slots=True)
class ReadingChunk:
    """Readings with consecutive sequence numbers (one large request, or a run of small ones)."""

    seq_start: int
    ids: Sequence[str | None] | None  # client ids; None (or a None entry) means generated
    stream_ids: list[str]
    models: list[str]
    model_versions: list[str]
    received_at: np.ndarray  # float64 (b,)
    timestamps: np.ndarray  # float64 (b,)
    errors: np.ndarray  # float64 (b,), NaN while warming up
    squared: np.ndarray  # float32 (b, n), NaN rows while warming up
    smoothed: np.ndarray  # float64 (b,), NaN while warming up
    signs: np.ndarray  # uint8 (b, ceil(n / 8)): packed observed >= reconstructed
    has_signs: np.ndarray  # bool (b,): the reply computed reconstructions for the row
    values: np.ndarray  # float32 (b, n)
    thresholds: np.ndarray  # float64 (b,)
    threshold_versions: np.ndarray  # int64 (b,)
    anomaly: np.ndarray  # bool (b,)
    alert: np.ndarray  # bool (b,)
    suppressed_by: np.ndarray  # int64 (b,): maintenance window id, 0 for none
    excluded_by: np.ndarray  # int64 (b,): maintenance window id, 0 for none

    @classmethod
    def of_batches(cls, batches: Sequence[ScoredBatch]) -> ReadingChunk:
        """One chunk from consecutive scored requests (same sensor count). A request's
        rows still warming up get NaN errors; a reading without the client's timestamp
        gets its receive time."""
        sizes = [len(b) for b in batches]
        received_at = np.repeat(np.array([b.received_at for b in batches]), sizes)
        if all(b.timestamps is None for b in batches):
            timestamps = received_at.copy()
        else:
            given = _joined(
                [b.timestamps if b.timestamps is not None else np.full(n, np.nan)
                 for b, n in zip(batches, sizes, strict=True)]
            )  # fmt: skip
            timestamps = np.where(np.isnan(given), received_at, given)
        ids: list[str | None] | None = None
        if any(b.reading_ids is not None for b in batches):
            ids = []
            for b, n in zip(batches, sizes, strict=True):
                ids.extend(b.reading_ids if b.reading_ids is not None else [None] * n)
        values = _joined([b.values for b in batches])
        signs, has_signs = _packed_signs(batches, values, sizes)
        suppressed_by, excluded_by = _windows(batches, sizes)
        return cls(
            seq_start=batches[0].seq_start,
            ids=ids,
            stream_ids=_repeated([b.stream_id for b in batches], sizes),
            models=_repeated([b.model.name for b in batches], sizes),
            model_versions=_repeated([b.model.version for b in batches], sizes),
            received_at=received_at,
            timestamps=timestamps,
            errors=_joined([_padded(b.errors, b.warming, np.nan) for b in batches]),
            squared=_joined([_padded(b.squared, b.warming, np.nan) for b in batches]),
            smoothed=_joined([_padded(b.smoothed, b.warming, np.nan) for b in batches]),
            signs=signs,
            has_signs=has_signs,
            values=values,
            thresholds=np.repeat(np.array([b.threshold.value for b in batches]), sizes),
            threshold_versions=np.repeat(
                np.array([b.threshold.version for b in batches], dtype=np.int64), sizes
            ),
            anomaly=_joined([_padded(b.anomalies, b.warming, False) for b in batches]),
            alert=_joined([b.states for b in batches]) == ALERT,
            suppressed_by=suppressed_by,
            excluded_by=excluded_by,
        )

    def __len__(self) -> int:
        return len(self.errors)

    def client_row(self, reading_id: str, stream_id: str) -> int | None:
        """The last row carrying this client id for this stream (operator path: a scan)."""
        ids = self.ids
        if ids is None:
            return None
        streams = self.stream_ids
        for row in range(len(ids) - 1, -1, -1):
            if ids[row] == reading_id and streams[row] == stream_id:
                return row
        return None

    def reading_id(self, row: int, prefix: str) -> str:
        given = self.ids[row] if self.ids is not None else None
        return given if given is not None else f"{prefix}{self.seq_start + row}"

    def reading(self, row: int, prefix: str) -> RecentReading:
        error = float(self.errors[row])
        scored = not np.isnan(error)
        return RecentReading(
            reading_id=self.reading_id(row, prefix),
            stream_id=self.stream_ids[row],
            model=self.models[row],
            model_version=self.model_versions[row],
            timestamp=float(self.timestamps[row]),
            received_at=float(self.received_at[row]),
            error=error if scored else None,
            squared_errors=self.squared[row].copy() if scored else None,
            values=self.values[row].copy(),
            threshold=float(self.thresholds[row]),
            threshold_version=int(self.threshold_versions[row]),
            anomaly=bool(self.anomaly[row]),
            alert=bool(self.alert[row]),
            smoothed=float(self.smoothed[row]) if scored else None,
            above_reconstruction=(
                np.unpackbits(self.signs[row], count=self.values.shape[1]).astype(bool)
                if scored and self.has_signs[row]
                else None
            ),
            suppressed_by=int(self.suppressed_by[row]) or None,
            excluded_by=int(self.excluded_by[row]) or None,
        )


def _has_signs(batch: ScoredBatch) -> bool:
    return len(batch.reconstruction) == len(batch.errors)


def _packed_signs(
    batches: Sequence[ScoredBatch], values: np.ndarray, sizes: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, packed bits: observed >= reconstructed (zeros where the reply computed no
    reconstruction, or the row was warming up), and whether it did. One comparison and
    one packing for the whole chunk: rows without a reconstruction compare with NaN."""
    n = values.shape[1]
    shown = [_has_signs(b) for b in batches]
    has_signs = np.repeat(np.array(shown, dtype=bool), sizes)
    if not any(shown):
        return np.zeros((len(values), (n + 7) // 8), dtype=np.uint8), has_signs
    start = 0
    for b, size in zip(batches, sizes, strict=True):
        has_signs[start : start + b.warming] = False
        start += size
    reconstruction = _joined(
        [
            _padded(
                b.reconstruction if ok else np.full((len(b.errors), n), np.nan, np.float32),
                b.warming,
                np.nan,
            )
            for b, ok in zip(batches, shown, strict=True)
        ]
    )
    return np.packbits(values >= reconstruction, axis=1), has_signs


def _windows(batches: Sequence[ScoredBatch], sizes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the suppress_alerts and exclude_from_learning windows' ids (0 for none)."""
    matches = [b.maintenance for b in batches]
    if matches.count(None) == len(matches):
        none = np.zeros(sum(sizes), np.int64)
        return none, none.copy()
    suppressed = [0 if m is None or m.suppressed_by is None else m.suppressed_by for m in matches]
    excluded = [0 if m is None or m.excluded_by is None else m.excluded_by for m in matches]
    return (
        np.repeat(np.array(suppressed, dtype=np.int64), sizes),
        np.repeat(np.array(excluded, dtype=np.int64), sizes),
    )


def _joined(arrays: list[np.ndarray]) -> np.ndarray:
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays)


def _padded(scored: np.ndarray, warming: int, fill: float | bool) -> np.ndarray:
    """A request's per-score rows with ``warming`` rows of ``fill`` in front."""
    if not warming:
        return scored
    pad = np.full((warming, *scored.shape[1:]), fill, dtype=scored.dtype)
    return np.concatenate((pad, scored))


def _repeated(labels: list[str], sizes: list[int]) -> list[str]:
    out: list[str] = []
    for label, size in zip(labels, sizes, strict=True):
        out += [label] * size
    return out


def _mask_equal(labels: list[str], value: str) -> np.ndarray:
    return np.fromiter((label == value for label in labels), dtype=bool, count=len(labels))


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
        self._client_ids = ClientIds()
        self._total = 0
        self._pending: list[ScoredBatch] = []  # small requests not yet sealed into a chunk

    def __len__(self) -> int:
        return self._total

    # --- writing (hot path) -------------------------------------------------------------
    def reserve(self, count: int) -> int:
        """Sequence numbers for a request's readings; generated id = prefix + sequence."""
        start = self._next_seq
        self._next_seq += count
        return start

    def add(self, batch: ScoredBatch) -> None:
        """A scored request's readings; requests arrive in sequence order (as
        :meth:`reserve` hands numbers out). A small request waits beside its neighbours
        and is sealed into one chunk with them (when ``MERGE_RUN`` wait, before any
        lookup, or when the bound is reached)."""
        size = len(batch)
        if size >= SMALL_CHUNK:
            self._seal()
            chunk = ReadingChunk.of_batches([batch])
            self._chunks.append(chunk)
            self._total += size
            self._client_ids.add(chunk)
            self._trim()
            return
        self._pending.append(batch)
        self._total += size
        if len(self._pending) >= MERGE_RUN or self._total > self.max_readings:
            self._trim()

    def _seal(self) -> None:
        """Turn the pending requests into chunks (one per run with the same sensor count)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        runs: list[list[ScoredBatch]] = []
        for batch in pending:  # models with different sensor counts cannot share arrays
            if runs and runs[-1][-1].values.shape[1] == batch.values.shape[1]:
                runs[-1].append(batch)
            else:
                runs.append([batch])
        for run in runs:
            chunk = ReadingChunk.of_batches(run)
            self._chunks.append(chunk)
            self._client_ids.add(chunk)

    def _cutoff(self) -> float:
        return self.clock() - self.retention_s

    def _trim(self) -> None:
        self._seal()
        cutoff = self._cutoff()
        chunks = self._chunks
        while chunks and (
            self._total > self.max_readings or float(chunks[0].received_at[-1]) < cutoff
        ):
            old = chunks.popleft()
            self._total -= len(old)
            self._client_ids.discard(old)

    # --- lookups ------------------------------------------------------------------------
    def get(self, reading_id: str, stream_id: str | None = None) -> RecentReading | None:
        """The retained reading with this id (of ``stream_id``, if given). A client id reused
        within a stream finds the latest; one that several streams' retained readings carry
        raises :class:`AmbiguousReadingId` unless ``stream_id`` says which."""
        self._trim()
        cutoff = self._cutoff()
        if reading_id in self._client_ids:
            found = []
            for stream, chunk in self._client_ids.candidates(reading_id, stream_id):
                row = chunk.client_row(reading_id, stream)
                if row is not None and chunk.received_at[row] >= cutoff:
                    found.append(chunk.reading(row, self.id_prefix))
            if len(found) > 1:
                raise AmbiguousReadingId(reading_id, sorted(r.stream_id for r in found))
            return found[0] if found else None
        prefix = self.id_prefix
        if not (reading_id.startswith(prefix) and is_sequence(reading_id[len(prefix) :])):
            return None
        seq = int(reading_id[len(prefix) :])
        position = bisect_right(self._chunks, seq, key=lambda c: c.seq_start) - 1
        if position < 0:
            return None
        chunk = self._chunks[position]
        row = seq - chunk.seq_start
        if (
            row >= len(chunk)
            or chunk.reading_id(row, prefix) != reading_id  # a client id took its place
            or chunk.received_at[row] < cutoff
            or (stream_id is not None and chunk.stream_ids[row] != stream_id)
        ):
            return None
        return chunk.reading(row, prefix)

    def _rows(
        self, since: float | None, model: str | None, stream_id: str | None = None
    ) -> Iterator[tuple[ReadingChunk, np.ndarray]]:
        """Chunks (newest first) with a mask of their retained, scored rows at or after
        ``since`` (of ``model`` and ``stream_id``, if given)."""
        self._trim()
        cutoff = self._cutoff()
        for chunk in reversed(self._chunks):
            mask = ~np.isnan(chunk.errors) & (chunk.received_at >= cutoff)
            if model is not None:
                mask &= _mask_equal(chunk.models, model)
            if stream_id is not None:
                mask &= _mask_equal(chunk.stream_ids, stream_id)
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
        stream_id: str | None = None,
    ) -> list[RecentReading]:
        """Newest first: readings taken while an alert was active (or also lone anomalies)."""
        found: list[RecentReading] = []
        for chunk, mask in self._rows(since, model, stream_id):
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
        stream_id: str | None = None,
    ) -> list[RecentReading]:
        """A uniform random sample of unflagged readings (no anomaly, no alert), without
        replacement: the counterweight to reviewing only alerts. Readings inside an
        exclude_from_learning maintenance window are left out: they are not the normal to
        learn."""
        candidates: list[tuple[ReadingChunk, int]] = []
        for chunk, mask in self._rows(since, model, stream_id):
            unflagged = ~chunk.anomaly & ~chunk.alert
            rows = np.flatnonzero(mask & unflagged & (chunk.excluded_by == 0)).tolist()
            candidates.extend((chunk, row) for row in rows)
        if not candidates or size <= 0:
            return []
        picks = rng.choice(len(candidates), size=min(size, len(candidates)), replace=False)
        return [candidates[i][0].reading(candidates[i][1], self.id_prefix) for i in picks.tolist()]

    def flagged_share(self, model: str) -> float | None:
        """The share of retained scored readings of ``model`` that were flagged (anomaly
        or alert); None when none is retained. Recalibration weighs reviewed labels by it."""
        flagged = total = 0
        for chunk, mask in self._rows(None, model):
            mask = mask & (chunk.excluded_by == 0)  # kept out of learning
            total += int(mask.sum())
            flagged += int((mask & (chunk.anomaly | chunk.alert)).sum())
        return flagged / total if total else None

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
            rows = np.flatnonzero(
                mask
                & _mask_equal(chunk.stream_ids, stream_id)
                & (chunk.timestamps >= start)
                & (chunk.timestamps <= end)
            )
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
            if mask.any():
                errors.append(chunk.errors[mask])
                squared.append(chunk.squared[mask])
        if not errors:
            return np.empty(0, dtype=np.float64), np.empty((0, 0), dtype=np.float32)
        return np.concatenate(errors[::-1]), np.concatenate(squared[::-1])
