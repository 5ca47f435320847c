"""One chunk of recently scored readings as numpy arrays (:class:`ReadingChunk`), and one
reading taken out of it for an operator (:class:`RecentReading`): what
:class:`~service.scoring.recent.RecentReadings` holds, built once per chunk from the
scored batches so the hot path makes no per-reading objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from service.scoring.decision import ALERT
from service.scoring.scored import ScoredBatch


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
