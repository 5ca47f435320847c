"""A scored reading as a fixed-size record of bytes, so another replica can read it back.

A request's readings pack into one string of records (:func:`pack`), which
:mod:`service.scoring.shared_readings` keeps in Redis; :func:`decode` gives back the
:class:`~service.scoring.reading_chunk.RecentReading` the recent-readings buffer holds.
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass

import numpy as np

from service.scoring.decision import ALERT
from service.scoring.reading_chunk import RecentReading
from service.scoring.scored import ScoredBatch

# timestamp, received at, error and smoothed score (NaN: warming), threshold, its version,
# the suppress_alerts and exclude_from_learning windows (0: none), anomaly, alert, whether
# the reply computed reconstructions, sensors, model name bytes, model version bytes; then
# the values and the squared errors (float32, NaN while warming), one bit a sensor for
# observed >= reconstructed, the model's name and version. Everything the recent-readings
# buffer keeps of a reading: a label by id on another replica must see what this one would
# (a window keeping it out of learning above all).
_RECORD = struct.Struct("<dddddqqq???HHH")


@dataclass(frozen=True, slots=True)
class PackedReadings:
    """A scored request's readings as the commit script takes them: fixed-size records in
    one string (no argument per reading: packing thousands costs more than scoring them),
    and the ids either generated (``prefix`` + ``seq_start + i``, built by the script) or
    length-prefixed in ``ids``."""

    count: int
    record_size: int
    id_prefix: str
    seq_start: int
    ids: bytes  # b"" when every id is generated
    records: bytes


def _sign_bytes(n_sensors: int) -> int:
    return (n_sensors + 7) // 8


def _windows(scored: ScoredBatch) -> tuple[int, int]:
    """The request's suppress_alerts and exclude_from_learning window ids, 0 for none."""
    match = scored.maintenance
    if match is None:
        return 0, 0
    return match.suppressed_by or 0, match.excluded_by or 0


def _has_signs(scored: ScoredBatch) -> bool:
    """Whether the reply computed reconstructions for the scored rows."""
    return len(scored.reconstruction) == len(scored.errors)


@functools.lru_cache(maxsize=64)
def _layout(n_sensors: int, model_len: int, version_len: int) -> np.dtype[np.void]:
    """The record as a numpy structured type: packed, the same bytes as ``_RECORD`` and
    the arrays and names after it."""
    return np.dtype(
        [
            ("timestamp", "<f8"), ("received", "<f8"), ("error", "<f8"), ("smoothed", "<f8"),
            ("threshold", "<f8"), ("threshold_version", "<i8"), ("suppressed_by", "<i8"),
            ("excluded_by", "<i8"), ("anomaly", "?"), ("alert", "?"), ("has_signs", "?"),
            ("n_sensors", "<u2"), ("model_len", "<u2"), ("version_len", "<u2"),
            ("values", "<f4", (n_sensors,)), ("squared", "<f4", (n_sensors,)),
            ("signs", "u1", (_sign_bytes(n_sensors),)),
            ("model", f"S{model_len}"), ("version", f"S{version_len}"),
        ]
    )  # fmt: skip


def pack(scored: ScoredBatch) -> PackedReadings:
    model = scored.model.name.encode()
    version = scored.model.version.encode()
    size, n_sensors = scored.values.shape
    if size == 1:  # single readings, the common request: struct beats numpy's set-up
        return _pack_one(scored, model, version, n_sensors)
    layout = _layout(n_sensors, len(model), len(version))
    rows = np.zeros(size, dtype=layout)
    received = scored.received_at
    if scored.timestamps is None:
        rows["timestamp"] = received
    else:
        rows["timestamp"] = np.where(np.isnan(scored.timestamps), received, scored.timestamps)
    rows["received"] = received
    warming = scored.warming
    rows["error"][:warming] = np.nan
    rows["error"][warming:] = scored.errors
    rows["smoothed"][:warming] = np.nan
    rows["smoothed"][warming:] = scored.smoothed
    rows["threshold"] = scored.threshold.value
    rows["threshold_version"] = scored.threshold.version
    rows["suppressed_by"], rows["excluded_by"] = _windows(scored)
    rows["anomaly"][warming:] = scored.anomalies
    rows["alert"] = scored.states == ALERT
    if _has_signs(scored):
        rows["has_signs"][warming:] = True
        rows["signs"][warming:] = np.packbits(
            scored.values[warming:] >= scored.reconstruction, axis=1
        )
    rows["n_sensors"] = n_sensors
    rows["model_len"] = len(model)
    rows["version_len"] = len(version)
    rows["values"] = scored.values
    rows["squared"][:warming] = np.nan
    rows["squared"][warming:] = scored.squared
    rows["model"] = model
    rows["version"] = version
    ids = b""
    if scored.reading_ids is not None:
        prefix, seq = scored.id_prefix, scored.seq_start
        encoded = [
            (x if x is not None else f"{prefix}{seq + i}").encode()
            for i, x in enumerate(scored.reading_ids)
        ]
        ids = b"".join(len(x).to_bytes(2, "big") + x for x in encoded)
    return PackedReadings(
        size, layout.itemsize, scored.id_prefix, scored.seq_start, ids, rows.tobytes()
    )


def _pack_one(scored: ScoredBatch, model: bytes, version: bytes, n_sensors: int) -> PackedReadings:
    received = scored.received_at
    stamp = float(scored.timestamps[0]) if scored.timestamps is not None else math.nan
    warming = scored.warming == 1
    has_signs = not warming and _has_signs(scored)
    header = _RECORD.pack(
        received if math.isnan(stamp) else stamp, received,
        math.nan if warming else float(scored.errors[0]),
        math.nan if warming else float(scored.smoothed[0]), scored.threshold.value,
        scored.threshold.version, *_windows(scored),
        False if warming else bool(scored.anomalies[0]), bool(scored.states[0] == ALERT),
        has_signs, n_sensors, len(model), len(version),
    )  # fmt: skip
    squared = (
        np.full(n_sensors, np.nan, dtype="<f4") if warming else scored.squared[0].astype("<f4")
    )
    signs = (
        np.packbits(scored.values[0] >= scored.reconstruction[0]).tobytes()
        if has_signs
        else bytes(_sign_bytes(n_sensors))
    )
    record = b"".join(
        (
            header,
            scored.values[0].astype("<f4").tobytes(),
            squared.tobytes(),
            signs,
            model,
            version,
        )
    )
    ids = b""
    given = scored.reading_ids[0] if scored.reading_ids is not None else None
    if given is not None:
        encoded = given.encode()
        ids = len(encoded).to_bytes(2, "big") + encoded
    return PackedReadings(1, len(record), scored.id_prefix, scored.seq_start, ids, record)


def decode(reading_id: str, stream_id: str, record: bytes) -> RecentReading:
    (timestamp, received, error, smoothed, threshold, threshold_version, suppressed_by,
     excluded_by, anomaly, alert, has_signs, n_sensors, model_len,
     version_len) = _RECORD.unpack_from(record)  # fmt: skip
    at = _RECORD.size
    values = np.frombuffer(record, dtype="<f4", count=n_sensors, offset=at).astype(np.float32)
    at += 4 * n_sensors
    squared = np.frombuffer(record, dtype="<f4", count=n_sensors, offset=at).astype(np.float32)
    at += 4 * n_sensors
    signs = np.frombuffer(record, dtype=np.uint8, count=_sign_bytes(n_sensors), offset=at)
    at += _sign_bytes(n_sensors)
    model = record[at : at + model_len].decode()
    at += model_len
    version = record[at : at + version_len].decode()
    scored = not math.isnan(error)
    return RecentReading(
        reading_id=reading_id,
        stream_id=stream_id,
        model=model,
        model_version=version,
        timestamp=timestamp,
        received_at=received,
        error=error if scored else None,
        squared_errors=squared if scored else None,
        values=values,
        threshold=threshold,
        threshold_version=threshold_version,
        anomaly=anomaly,
        alert=alert,
        smoothed=smoothed if scored else None,
        above_reconstruction=(
            np.unpackbits(signs, count=n_sensors).astype(bool) if scored and has_signs else None
        ),
        suppressed_by=suppressed_by or None,
        excluded_by=excluded_by or None,
    )
