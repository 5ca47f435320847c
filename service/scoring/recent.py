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
from collections import Counter, deque
from collections.abc import Callable, Iterator
from itertools import islice

import numpy as np

from service.scoring.client_ids import AmbiguousReadingId as AmbiguousReadingId
from service.scoring.client_ids import ClientIds, is_sequence
from service.scoring.reading_chunk import ReadingChunk, RecentReading
from service.scoring.scored import ScoredBatch

SMALL_CHUNK = 64  # requests below this many readings wait...
MERGE_RUN = 128  # ...until this many do, then are sealed into one chunk


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
        on_dropped: Callable[[int], None] | None = None,
    ) -> None:
        if max_readings < 1:
            raise ValueError(f"max_readings must be >= 1, got {max_readings}")
        self.max_readings = max_readings
        self.retention_s = retention_s
        self.clock = clock
        self.on_dropped = on_dropped  # readings let go for the bound before their retention
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
        dropped = 0
        while chunks and (
            self._total > self.max_readings or float(chunks[0].received_at[-1]) < cutoff
        ):
            old = chunks.popleft()
            self._total -= len(old)
            self._client_ids.discard(old)
            dropped += int(np.count_nonzero(old.received_at >= cutoff))
        if dropped and self.on_dropped is not None:
            self.on_dropped(dropped)

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
        self,
        since: float | None,
        model: str | None,
        stream_id: str | None = None,
        *,
        before: int | None = None,
    ) -> Iterator[tuple[ReadingChunk, np.ndarray]]:
        """Chunks (newest first) with a mask of their retained, scored rows at or after
        ``since`` (of ``model`` and ``stream_id``, if given); with ``before``, only chunks
        starting below that sequence number, so a page deep in the buffer does not build
        the masks of every newer chunk again."""
        self._trim()
        cutoff = self._cutoff()
        for chunk in reversed(self._chunks):
            if before is not None and chunk.seq_start >= before:
                continue
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
        rows = self._alert_rows(since, model, stream_id, include_anomalies, before=None)
        return [chunk.reading(row, self.id_prefix) for chunk, row, _ in islice(rows, limit)]

    def alert_page(
        self,
        *,
        model: str,
        limit: int,
        before: int | None = None,
        stream_id: str | None = None,
    ) -> tuple[list[RecentReading], int | None]:
        """Newest first, at most ``limit`` readings taken while an alert was active that
        arrived before the reading at position ``before`` (None: from the newest), and the
        ``before`` of the next page (None: no older one is retained). A page does not hold
        the buffer between calls, so the caller may await between pages while readings
        arrive and old ones are trimmed."""
        found: list[RecentReading] = []
        rows = self._alert_rows(None, model, stream_id, False, before=before)
        for chunk, row, seq in rows:
            if len(found) == limit:
                return found, seq + 1
            found.append(chunk.reading(row, self.id_prefix))
        return found, None

    def _alert_rows(
        self,
        since: float | None,
        model: str | None,
        stream_id: str | None,
        include_anomalies: bool,
        *,
        before: int | None,
    ) -> Iterator[tuple[ReadingChunk, int, int]]:
        """(chunk, row, sequence number) of alert readings, newest first, below ``before``.
        Sequence numbers grow with arrival, chunk after chunk (:meth:`add`)."""
        for chunk, mask in self._rows(since, model, stream_id, before=before):
            flagged = chunk.alert | chunk.anomaly if include_anomalies else chunk.alert
            rows = np.flatnonzero(mask & flagged)
            if before is not None:
                rows = rows[rows < before - chunk.seq_start]
            for row in rows[::-1].tolist():
                yield chunk, row, chunk.seq_start + row

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

    def flagged_share(self, model: str, model_version: str) -> float | None:
        """The share of retained scored readings of this model version that were flagged
        (anomaly or alert); None when none is retained. Recalibration weighs reviewed
        labels by it (another version flags by another model and threshold)."""
        flagged = total = 0
        for chunk, mask in self._learnable(model, model_version):
            total += int(mask.sum())
            flagged += int((mask & (chunk.anomaly | chunk.alert)).sum())
        return flagged / total if total else None

    def exceedances(
        self, model: str, model_version: str, threshold: float, *, smoothed: bool
    ) -> list[tuple[int, int]]:
        """Per stream, how many retained scored readings of this model version there are and
        how many of them lie above ``threshold`` (their smoothed scores, in the error's units,
        when ``smoothed``, else their errors); readings kept out of learning are left out.
        Recalibration measures from them how often normal operation exceeds a threshold."""
        totals: Counter[str] = Counter()
        aboves: Counter[str] = Counter()
        for chunk, mask in self._learnable(model, model_version):
            values = chunk.smoothed * chunk.thresholds if smoothed else chunk.errors
            mask &= np.isfinite(values)
            ids = chunk.stream_ids
            totals.update(ids[row] for row in np.flatnonzero(mask).tolist())
            aboves.update(ids[row] for row in np.flatnonzero(mask & (values > threshold)).tolist())
        return [(n, aboves[stream]) for stream, n in totals.items()]

    def _learnable(
        self, model: str, model_version: str
    ) -> Iterator[tuple[ReadingChunk, np.ndarray]]:
        """Each chunk with the mask of its retained scored readings of this model version
        that are not kept out of learning."""
        for chunk, mask in self._rows(None, model):
            versions = _mask_equal(chunk.model_versions, model_version)
            yield chunk, mask & (chunk.excluded_by == 0) & versions

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
