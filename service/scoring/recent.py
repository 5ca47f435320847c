"""Recently scored readings, addressable by reading id, for feedback and the review queue.

One chunk per request, held as numpy arrays (no per-reading objects on the hot path);
bounded by a reading count and a retention time. Runs of small chunks (single-reading
traffic) are merged into one, so memory stays near the data itself (~0.4 KB per reading
for 50 sensors) and the garbage collector sees few objects. Generated reading ids encode
a sequence number, so they need no index; client-supplied ids go into a dict.
"""

from __future__ import annotations

import os
import time
from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

SMALL_CHUNK = 64  # chunks below this many readings are merged...
MERGE_RUN = 128  # ...once this many of them sit at the tail


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
    """Readings with consecutive sequence numbers (one request, or a merged run of them)."""

    seq_start: int
    ids: Sequence[str | None] | None  # client ids; None (or a None entry) means generated
    stream_ids: list[str]
    models: list[str]
    model_versions: list[str]
    received_at: np.ndarray  # float64 (b,)
    timestamps: np.ndarray  # float64 (b,)
    errors: np.ndarray  # float64 (b,), NaN while warming up
    squared: np.ndarray  # float32 (b, n), NaN rows while warming up
    values: np.ndarray  # float32 (b, n)
    thresholds: np.ndarray  # float64 (b,)
    threshold_versions: np.ndarray  # int64 (b,)
    anomaly: np.ndarray  # bool (b,)
    alert: np.ndarray  # bool (b,)

    @classmethod
    def of_request(
        cls,
        *,
        seq_start: int,
        ids: Sequence[str | None] | None,
        stream_id: str,
        model: str,
        model_version: str,
        received_at: float,
        timestamps: np.ndarray,
        errors: np.ndarray,
        squared: np.ndarray,
        values: np.ndarray,
        threshold: float,
        threshold_version: int,
        anomaly: np.ndarray,
        alert: np.ndarray,
    ) -> ReadingChunk:
        size = len(errors)
        return cls(
            seq_start=seq_start,
            ids=ids,
            stream_ids=[stream_id] * size,
            models=[model] * size,
            model_versions=[model_version] * size,
            received_at=np.full(size, received_at),
            timestamps=timestamps,
            errors=errors,
            squared=squared,
            values=values,
            thresholds=np.full(size, threshold),
            threshold_versions=np.full(size, threshold_version, dtype=np.int64),
            anomaly=anomaly,
            alert=alert,
        )

    @classmethod
    def merge(cls, chunks: list[ReadingChunk]) -> ReadingChunk:
        """One chunk from consecutive ones (same sensor count)."""
        ids: list[str | None] | None = None
        if any(c.ids is not None for c in chunks):
            ids = []
            for c in chunks:
                ids.extend(c.ids if c.ids is not None else [None] * len(c))
        return cls(
            seq_start=chunks[0].seq_start,
            ids=ids,
            stream_ids=[s for c in chunks for s in c.stream_ids],
            models=[m for c in chunks for m in c.models],
            model_versions=[v for c in chunks for v in c.model_versions],
            received_at=np.concatenate([c.received_at for c in chunks]),
            timestamps=np.concatenate([c.timestamps for c in chunks]),
            errors=np.concatenate([c.errors for c in chunks]),
            squared=np.concatenate([c.squared for c in chunks]),
            values=np.concatenate([c.values for c in chunks]),
            thresholds=np.concatenate([c.thresholds for c in chunks]),
            threshold_versions=np.concatenate([c.threshold_versions for c in chunks]),
            anomaly=np.concatenate([c.anomaly for c in chunks]),
            alert=np.concatenate([c.alert for c in chunks]),
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
        )


class _Pending(NamedTuple):
    """A small request's readings, kept as its arrays until sealed into one chunk with its
    neighbours (cheaper than building a chunk per request and merging them later)."""

    seq_start: int
    ids: Sequence[str | None] | None
    stream_id: str
    model: str
    model_version: str
    received_at: float
    timestamps: np.ndarray | None  # the client's, NaN where none; None: none at all
    errors: np.ndarray
    squared: np.ndarray
    values: np.ndarray
    threshold: float
    threshold_version: int
    anomaly: np.ndarray
    alert: np.ndarray


def _sealed(parts: list[_Pending]) -> ReadingChunk:
    """One chunk from consecutive pending requests (same sensor count)."""
    sizes = [len(p.errors) for p in parts]
    received_at = np.repeat(np.array([p.received_at for p in parts]), sizes)
    if all(p.timestamps is None for p in parts):
        timestamps = received_at.copy()
    else:
        given = np.concatenate(
            [p.timestamps if p.timestamps is not None else np.full(n, np.nan)
             for p, n in zip(parts, sizes, strict=True)]
        )  # fmt: skip
        timestamps = np.where(np.isnan(given), received_at, given)
    ids: list[str | None] | None = None
    if any(p.ids is not None for p in parts):
        ids = []
        for p, n in zip(parts, sizes, strict=True):
            ids.extend(p.ids if p.ids is not None else [None] * n)
    return ReadingChunk(
        seq_start=parts[0].seq_start,
        ids=ids,
        stream_ids=[p.stream_id for p, n in zip(parts, sizes, strict=True) for _ in range(n)],
        models=[p.model for p, n in zip(parts, sizes, strict=True) for _ in range(n)],
        model_versions=[
            p.model_version for p, n in zip(parts, sizes, strict=True) for _ in range(n)
        ],
        received_at=received_at,
        timestamps=timestamps,
        errors=np.concatenate([p.errors for p in parts]),
        squared=np.concatenate([p.squared for p in parts]),
        values=np.concatenate([p.values for p in parts]),
        thresholds=np.repeat(np.array([p.threshold for p in parts]), sizes),
        threshold_versions=np.repeat(
            np.array([p.threshold_version for p in parts], dtype=np.int64), sizes
        ),
        anomaly=np.concatenate([p.anomaly for p in parts]),
        alert=np.concatenate([p.alert for p in parts]),
    )


class AmbiguousReadingId(LookupError):
    """A client reading id that several streams' retained readings carry."""

    def __init__(self, reading_id: str, streams: list[str]) -> None:
        super().__init__(reading_id, streams)
        self.reading_id = reading_id
        self.streams = streams


_Entry = tuple[str, ReadingChunk] | dict[str, ReadingChunk]


class _ClientIds:
    """Client reading ids → the chunk holding each stream's latest reading with that id.

    Ids are the client's own, so two streams may use the same one (per-device counters): an
    id of one stream holds a (stream, chunk) pair, one that several streams use holds a dict
    by stream, so a lookup can tell them apart instead of labelling the wrong reading.
    """

    __slots__ = ("_entries",)

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def add(self, chunk: ReadingChunk) -> None:
        if chunk.ids is None:
            return
        entries = self._entries
        streams = chunk.stream_ids
        if len(set(streams)) == 1:
            given = [i for i in chunk.ids if i is not None]
            if entries.keys().isdisjoint(given):  # the usual case, at C speed
                entries.update(dict.fromkeys(given, (streams[0], chunk)))
                return
        for reading_id, stream in zip(chunk.ids, streams, strict=True):
            if reading_id is None:
                continue
            entry = entries.get(reading_id)
            if entry is None or (isinstance(entry, tuple) and entry[0] == stream):
                entries[reading_id] = (stream, chunk)
            elif isinstance(entry, tuple):
                entries[reading_id] = {entry[0]: entry[1], stream: chunk}
            else:
                entry[stream] = chunk

    def discard(self, chunk: ReadingChunk) -> None:
        """Forget the ids whose latest reading (per stream) sits in ``chunk``."""
        if chunk.ids is None:
            return
        entries = self._entries
        for reading_id, stream in zip(chunk.ids, chunk.stream_ids, strict=True):
            entry = entries.get(reading_id) if reading_id is not None else None
            if entry is None:
                continue
            if isinstance(entry, tuple):
                if entry[1] is chunk:
                    del entries[reading_id]  # type: ignore[arg-type]
            elif entry.get(stream) is chunk:
                del entry[stream]
                if len(entry) == 1:
                    entries[reading_id] = next(iter(entry.items()))  # type: ignore[index]

    def replace(self, group: list[ReadingChunk], merged: ReadingChunk) -> None:
        """Point the ids of ``group``'s chunks at the chunk they were merged into."""
        if merged.ids is None:
            return
        old = {id(chunk) for chunk in group}
        entries = self._entries
        for reading_id, stream in zip(merged.ids, merged.stream_ids, strict=True):
            entry = entries.get(reading_id) if reading_id is not None else None
            if isinstance(entry, tuple):
                if id(entry[1]) in old:
                    entries[reading_id] = (entry[0], merged)  # type: ignore[index]
            elif entry is not None and id(entry.get(stream)) in old:
                entry[stream] = merged

    def candidates(self, reading_id: str, stream_id: str | None) -> list[tuple[str, ReadingChunk]]:
        entry = self._entries.get(reading_id)
        if entry is None:
            return []
        pairs = [entry] if isinstance(entry, tuple) else list(entry.items())
        return [pair for pair in pairs if stream_id is None or pair[0] == stream_id]

    def __contains__(self, reading_id: object) -> bool:
        return reading_id in self._entries


def _is_sequence(text: str) -> bool:
    """A generated id's sequence number: ASCII digits only ("²".isdigit() is true too, and
    int() refuses it) and short enough for int() (which refuses over 4,300 digits)."""
    return 0 < len(text) <= 20 and text.isascii() and text.isdigit()


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
        self._client_ids = _ClientIds()
        self._total = 0
        self._small_tail = 0  # small chunks at the right end, not yet merged
        self._pending: list[_Pending] = []  # small requests not yet sealed into a chunk

    def __len__(self) -> int:
        return self._total

    # --- writing (hot path) -------------------------------------------------------------
    def reserve(self, count: int) -> int:
        """Sequence numbers for a request's readings; generated id = prefix + sequence."""
        start = self._next_seq
        self._next_seq += count
        return start

    def add_request(
        self,
        *,
        seq_start: int,
        ids: Sequence[str | None] | None,
        stream_id: str,
        model: str,
        model_version: str,
        received_at: float,
        timestamps: np.ndarray | None,
        errors: np.ndarray,
        squared: np.ndarray,
        values: np.ndarray,
        threshold: float,
        threshold_version: int,
        anomaly: np.ndarray,
        alert: np.ndarray,
    ) -> None:
        """One request's readings, in sequence order. ``timestamps``: the client's (NaN
        where none; None when none at all), else the receive time is used. A small request
        waits beside its neighbours and is sealed into one chunk with them (when
        ``MERGE_RUN`` wait, before any lookup, or when the bound is reached)."""
        size = len(errors)
        if size >= SMALL_CHUNK:
            if timestamps is None:
                stamps = np.full(size, received_at)
            else:
                stamps = np.where(np.isnan(timestamps), received_at, timestamps)
            self.add(
                ReadingChunk.of_request(
                    seq_start=seq_start,
                    ids=ids,
                    stream_id=stream_id,
                    model=model,
                    model_version=model_version,
                    received_at=received_at,
                    timestamps=stamps,
                    errors=errors,
                    squared=squared,
                    values=values,
                    threshold=threshold,
                    threshold_version=threshold_version,
                    anomaly=anomaly,
                    alert=alert,
                )  # fmt: skip
            )
            return
        self._pending.append(
            _Pending(
                seq_start,
                ids,
                stream_id,
                model,
                model_version,
                received_at,
                timestamps,
                errors,
                squared,
                values,
                threshold,
                threshold_version,
                anomaly,
                alert,
            )  # fmt: skip
        )
        self._total += size
        if len(self._pending) >= MERGE_RUN or self._total > self.max_readings:
            self._seal()
            self._trim()

    def _seal(self) -> None:
        """Turn the pending requests into chunks (one per run with the same sensor count)."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        runs: list[list[_Pending]] = []
        for part in pending:  # models with different sensor counts cannot share arrays
            if runs and runs[-1][-1].values.shape[1] == part.values.shape[1]:
                runs[-1].append(part)
            else:
                runs.append([part])
        for run in runs:
            chunk = _sealed(run)
            self._chunks.append(chunk)
            self._client_ids.add(chunk)
        self._small_tail = 0

    def add(self, chunk: ReadingChunk) -> None:
        """Chunks must arrive in sequence order (as :meth:`reserve` hands numbers out)."""
        self._seal()
        self._chunks.append(chunk)
        self._total += len(chunk)
        self._client_ids.add(chunk)
        if len(chunk) < SMALL_CHUNK:
            self._small_tail += 1
            if self._small_tail >= MERGE_RUN:
                self._merge_tail()
        else:
            self._small_tail = 0
        self._trim()

    def _merge_tail(self) -> None:
        run = [self._chunks.pop() for _ in range(min(self._small_tail, len(self._chunks)))]
        run.reverse()
        self._small_tail = 0
        groups: list[list[ReadingChunk]] = []
        for chunk in run:  # models with different sensor counts cannot share arrays
            if groups and groups[-1][-1].values.shape[1] == chunk.values.shape[1]:
                groups[-1].append(chunk)
            else:
                groups.append([chunk])
        for group in groups:
            merged = ReadingChunk.merge(group) if len(group) > 1 else group[0]
            self._chunks.append(merged)
            if merged is not group[0]:
                self._client_ids.replace(group, merged)

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
        self._small_tail = min(self._small_tail, len(chunks))

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
        if not (reading_id.startswith(prefix) and _is_sequence(reading_id[len(prefix) :])):
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
        self, since: float | None, model: str | None
    ) -> Iterator[tuple[ReadingChunk, np.ndarray]]:
        """Chunks (newest first) with a mask of their retained, scored rows at or after
        ``since`` (of ``model``, if given)."""
        self._trim()
        cutoff = self._cutoff()
        for chunk in reversed(self._chunks):
            mask = ~np.isnan(chunk.errors) & (chunk.received_at >= cutoff)
            if model is not None:
                mask &= _mask_equal(chunk.models, model)
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

    def flagged_share(self, model: str) -> float | None:
        """The share of retained scored readings of ``model`` that were flagged (anomaly
        or alert); None when none is retained. Recalibration weighs reviewed labels by it."""
        flagged = total = 0
        for chunk, mask in self._rows(None, model):
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
