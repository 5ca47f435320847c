"""The record of one scored request, handed by the pipeline to everything that follows it:
the recent-readings store, the metrics tally and the reply encoders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from service.scoring.decision import WindowMatch
from service.scoring.registry import LoadedModel
from service.scoring.thresholds import ThresholdSnapshot


@dataclass(frozen=True, slots=True)
class ScoredBatch:
    """One request's ``b`` readings after scoring, columnar. The first ``warming`` rows
    (a windowed model's stream still filling its window) carry no score: the per-score
    arrays hold the ``s = b - warming`` scored rows only."""

    model: LoadedModel
    stream_id: str
    threshold: ThresholdSnapshot  # the one in force when the request was prepared
    seq_start: int  # generated reading id of row i: id_prefix + (seq_start + i)
    id_prefix: str
    reading_ids: list[str] | None  # None: every id is generated
    received_at: float  # Unix seconds
    timestamps: np.ndarray | None  # float64 (b,), the client's, NaN where none; None: none
    warming: int
    history: int  # readings the stream's window buffer held before this request
    values: np.ndarray  # float32 (b, n), raw, in manifest order
    errors: np.ndarray  # float64 (s,)
    scores: np.ndarray  # float64 (s,): error / threshold
    anomalies: np.ndarray  # bool (s,)
    smoothed: np.ndarray  # float64 (s,)
    states: np.ndarray  # int8 (b,): alert-state codes, WARMING_UP for the warming rows
    top_index: np.ndarray  # int (s, k): the sensors with the largest shares, largest first
    top_share: np.ndarray  # float64 (s, k)
    squared: np.ndarray  # float32 (s, n): per-sensor squared errors
    reconstruction: np.ndarray  # float32 (s, n); (0, n) when the reply does not show it
    alerts_raised: int
    maintenance: WindowMatch | None = None  # the windows the request fell in, if any
    alerts_suppressed: int = 0  # alerts a suppress_alerts window held back
    glitched: int = 0  # readings the glitch guard put a value of back (service/scoring/glitches.py)

    def __len__(self) -> int:
        return len(self.values)
