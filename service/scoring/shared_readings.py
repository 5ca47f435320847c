"""Scored readings as Redis records, so a label can reach a reading another replica scored.

A reading is a field of the hash ``<ns>:r:<reading id>``, named by its stream, holding the
packed :class:`~service.scoring.recent.RecentReading`; the hash expires with the retention
(``ANOMALY_RECENT_RETENTION_S``). The stream store writes them in the same script call as
the stream states (one round trip per request); :class:`SharedReadings` reads them back.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator

import numpy as np
from redis.asyncio import Redis
from redis.exceptions import RedisError

from service.errors import StreamStateUnavailable
from service.scoring.client_ids import AmbiguousReadingId
from service.scoring.decision import ALERT
from service.scoring.recent import RecentReading
from service.scoring.scored import ScoredBatch

# timestamp, received at, error (NaN: warming), threshold, its version, anomaly, alert,
# sensors, model name bytes, model version bytes
_RECORD = struct.Struct("<ddddq??HHH")

SharedFinds = dict[str, RecentReading | AmbiguousReadingId]


def reading_key(namespace: str, reading_id: str) -> str:
    return f"{namespace}:r:{reading_id}"


def records(scored: ScoredBatch) -> Iterator[tuple[str, bytes]]:
    """(reading id, record) for every reading of a scored request, in order."""
    model = scored.model.name.encode()
    version = scored.model.version.encode()
    n_sensors = scored.values.shape[1]
    warming = scored.warming
    prefix, seq = scored.id_prefix, scored.seq_start
    ids = scored.reading_ids
    received = scored.received_at
    given = scored.timestamps.tolist() if scored.timestamps is not None else None
    errors = scored.errors.tolist()
    anomalies = scored.anomalies.tolist()
    alerts = (scored.states == ALERT).tolist()
    threshold, threshold_version = scored.threshold.value, scored.threshold.version
    for i in range(len(scored)):
        timestamp = given[i] if given is not None and not math.isnan(given[i]) else received
        row = i - warming
        scored_row = row >= 0
        header = _RECORD.pack(
            timestamp, received, errors[row] if scored_row else math.nan, threshold,
            threshold_version, bool(anomalies[row]) if scored_row else False, alerts[i],
            n_sensors, len(model), len(version),
        )  # fmt: skip
        parts = [header, model, version, scored.values[i].astype("<f4").tobytes()]
        if scored_row:
            parts.append(scored.squared[row].astype("<f4").tobytes())
        reading_id = ids[i] if ids is not None and ids[i] is not None else f"{prefix}{seq + i}"
        yield reading_id, b"".join(parts)


def decode(reading_id: str, stream_id: str, record: bytes) -> RecentReading:
    (timestamp, received, error, threshold, threshold_version, anomaly, alert, n_sensors,
     model_len, version_len) = _RECORD.unpack_from(record)  # fmt: skip
    at = _RECORD.size
    model = record[at : at + model_len].decode()
    at += model_len
    version = record[at : at + version_len].decode()
    at += version_len
    values = np.frombuffer(record, dtype="<f4", count=n_sensors, offset=at).astype(np.float32)
    at += 4 * n_sensors
    scored = not math.isnan(error)
    squared = (
        np.frombuffer(record, dtype="<f4", count=n_sensors, offset=at).astype(np.float32)
        if scored
        else None
    )
    return RecentReading(
        reading_id=reading_id,
        stream_id=stream_id,
        model=model,
        model_version=version,
        timestamp=timestamp,
        received_at=received,
        error=error if scored else None,
        squared_errors=squared,
        values=values,
        threshold=threshold,
        threshold_version=threshold_version,
        anomaly=anomaly,
        alert=alert,
    )


class SharedReadings:
    """Looks up readings by id among every replica's (read side; the store writes)."""

    def __init__(
        self,
        client: Redis,
        *,
        namespace: str,
        retention_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.retention_s = retention_s
        self.clock = clock

    async def find(self, reading_ids: list[str], stream_id: str | None) -> SharedFinds:
        """The retained readings with these ids (of ``stream_id``, if given), in one round
        trip; an id several streams carry, with no stream given, maps to the ambiguity."""
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for reading_id in reading_ids:
                    key = reading_key(self.namespace, reading_id)
                    if stream_id is None:
                        pipe.hgetall(key)
                    else:
                        pipe.hget(key, stream_id)
                replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StreamStateUnavailable(
                "the shared store of recent readings (Redis) did not answer: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        cutoff = self.clock() - self.retention_s
        found: SharedFinds = {}
        for reading_id, reply in zip(reading_ids, replies, strict=True):
            if not reply:  # None (no such field) or {} (no such hash)
                continue
            fields: dict[bytes, bytes] = (
                {stream_id.encode(): reply} if stream_id is not None else reply
            )
            readings = [
                decode(reading_id, stream.decode(), record) for stream, record in fields.items()
            ]
            readings = [r for r in readings if r.received_at >= cutoff]
            if len(readings) > 1:
                found[reading_id] = AmbiguousReadingId(
                    reading_id, sorted(r.stream_id for r in readings)
                )
            elif readings:
                found[reading_id] = readings[0]
        return found
