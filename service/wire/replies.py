"""Replies to a scoring request, from its :class:`ScoredBatch`: per-reading JSON, the
columnar JSON of bulk bodies, or the same columns as an ``.npz``."""

from __future__ import annotations

import io
from itertools import chain, repeat
from typing import Any

import numpy as np
import orjson

from service.scoring.decision import ALERT, STATE_NAMES
from service.scoring.scored import ScoredBatch


def _maintenance_fields(scored: ScoredBatch) -> dict[str, int]:
    """The maintenance windows the request fell in; no keys at all outside any window."""
    match = scored.maintenance
    if match is None:
        return {}
    fields = {}
    if match.suppressed_by is not None:
        fields["suppressed_by_window"] = match.suppressed_by
    if match.excluded_by is not None:
        fields["excluded_from_learning_by_window"] = match.excluded_by
    return fields


def render_json(scored: ScoredBatch, single: bool) -> bytes:
    """The per-reading JSON reply. Large batches are rendered column by column
    (:func:`_scored_fragments`); the bytes are the same either way."""
    model = scored.model
    thr = scored.threshold
    common: dict[str, Any] = {
        "model": model.name,
        "model_version": model.version,
        "threshold": thr.value,
        "threshold_version": thr.version,
    }
    if scored.maintenance is not None:
        common.update(_maintenance_fields(scored))
    if single or len(scored.errors) < _FRAGMENTS_MIN:
        ids = _reading_ids(scored)
        results = _warming_results(scored, ids, common) + _scored_results(scored, ids)
        if scored.timestamps is not None:
            for result, stamp in zip(results, scored.timestamps.tolist(), strict=True):
                result["timestamp"] = None if stamp != stamp else stamp
        body: dict[str, Any] = {"stream_id": scored.stream_id, **common}
        if single:
            body["result"] = results[0]
        else:
            body["results"] = results
            body["alerts_raised"] = scored.alerts_raised
        return orjson.dumps(body)
    ids = scored.reading_ids or _reading_ids(scored, scored.warming)
    warming = _warming_results(scored, ids, common)
    if scored.timestamps is not None:
        for result, stamp in zip(warming, scored.timestamps.tolist(), strict=False):
            result["timestamp"] = None if stamp != stamp else stamp
    head = orjson.dumps({"stream_id": scored.stream_id, **common})
    pieces = [head[:-1], b',"results":[']
    if warming:
        pieces += [orjson.dumps(warming)[1:-1], b","]
    pieces += [
        _scored_fragments(scored, ids, common),
        b'],"alerts_raised":',
        str(scored.alerts_raised).encode(),
        b"}",
    ]
    return b"".join(pieces)


# From this many scored readings on, the reply is built from columns of JSON fragments.
_FRAGMENTS_MIN = 32
Column = bytes | list[bytes]  # a constant, or one fragment per reading
# Fragments from a value's key to the next number's key, by anomaly flag and alert state.
_AFTER_SCORE = np.array(
    [b',"anomaly":' + flag + b',"smoothed_score":' for flag in (b"false", b"true")], dtype=object
)
_AFTER_SMOOTHED = np.array(
    [
        b',"alert_state":' + orjson.dumps(name) + b',"alert":'
        + (b"true" if code == ALERT else b"false") + b',"top_sensors":['
        for code, name in enumerate(STATE_NAMES)
    ],
    dtype=object,
)  # fmt: skip


def _reading_ids(scored: ScoredBatch, count: int | None = None) -> list[str]:
    """The first ``count`` (default: all) reading ids."""
    count = len(scored.values) if count is None else count
    if scored.reading_ids is not None:
        return scored.reading_ids[:count]
    prefix, start = scored.id_prefix, scored.seq_start
    return [f"{prefix}{seq}" for seq in range(start, start + count)]


def _warming_results(
    scored: ScoredBatch, ids: list[str], common: dict[str, Any]
) -> list[dict[str, Any]]:
    needed = scored.model.window - 1 - scored.history
    return [
        {
            "reading_id": ids[i],
            "status": "warming_up",
            "alert_state": "warming_up",
            "alert": False,
            "readings_needed": needed - i,
            **common,
        }
        for i in range(scored.warming)
    ]


def _top_columns(scored: ScoredBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed and reconstructed values of each reading's top sensors, and their shares."""
    top_index = scored.top_index
    rows = np.arange(len(top_index))[:, None]
    observed = scored.values[scored.warming :][rows, top_index]
    return scored.top_share, observed, scored.reconstruction[rows, top_index]


def _scored_results(scored: ScoredBatch, ids: list[str]) -> list[dict[str, Any]]:
    """Scored readings as dicts: the cheaper way for a few readings."""
    if not len(scored.errors):
        return []
    model, thr = scored.model, scored.threshold
    sensors = model.sensors
    top_index = scored.top_index
    k = top_index.shape[1]
    if len(top_index) == 1:  # one reading: Python indexing beats numpy's fancy indexing
        row = top_index[0].tolist()
        observed_row = scored.values[scored.warming].tolist()
        reconstructed_row = (
            scored.reconstruction[0].tolist()
            if model.expects_readings
            else [None] * len(observed_row)
        )
        tops = [
            [
                {
                    "sensor": sensors[j],
                    "share": share,
                    "observed": observed_row[j],
                    "reconstructed": reconstructed_row[j],
                }
                for j, share in zip(row, scored.top_share[0].tolist(), strict=True)
            ]
        ]
    else:
        shares, observed, reconstructed = _top_columns(scored)
        # The top-sensor dicts come from flat columns in one pass, then are sliced per
        # reading, rather than a nested comprehension per reading.
        flat = [
            {"sensor": a, "share": b, "observed": c, "reconstructed": d}
            for a, b, c, d in zip(
                [sensors[j] for j in top_index.ravel().tolist()],
                shares.ravel().tolist(),
                observed.ravel().tolist(),
                reconstructed.ravel().tolist()
                if model.expects_readings
                else repeat(None, top_index.size),
                strict=True,
            )
        ]
        tops = [flat[start : start + k] for start in range(0, len(flat), k)]
    name, version, value, thr_version = model.name, model.version, thr.value, thr.version
    results = [
        {
            "reading_id": rid,
            "status": "scored",
            "error": err,
            "score": score,
            "anomaly": flag,
            "smoothed_score": smooth,
            "alert_state": STATE_NAMES[st],
            "alert": st == ALERT,
            "top_sensors": top,
            "model": name,
            "model_version": version,
            "threshold": value,
            "threshold_version": thr_version,
        }
        for rid, err, score, flag, smooth, st, top in zip(
            ids[scored.warming :],
            scored.errors.tolist(),
            scored.scores.tolist(),
            scored.anomalies.tolist(),
            scored.smoothed.tolist(),
            scored.states[scored.warming :].tolist(),
            tops,
            strict=True,
        )
    ]
    if scored.maintenance is not None:
        extra = _maintenance_fields(scored)
        for result in results:
            result.update(extra)
    return results


def _json_numbers(values: np.ndarray) -> list[bytes]:
    """Each value as orjson writes it; float64 values are written as Python floats are."""
    text = orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)
    return text[1:-1].split(b",")


def _scored_fragments(scored: ScoredBatch, ids: list[str], common: dict[str, Any]) -> bytes:
    """The scored readings' JSON objects, comma-separated, without building a dict per
    reading: every number column is written by orjson in one call (numpy arrays, split
    at the commas); keys, and values from a small set (flags, states, sensor names) with
    the keys around them, are ready-made fragments; one ``join`` interleaves the columns
    row by row."""
    warming = scored.warming
    count = len(scored.errors)
    k = scored.top_index.shape[1]
    shares, observed, reconstructed = _top_columns(scored)
    states = scored.states[warming:]
    if scored.reading_ids is None:  # generated: prefix + sequence, written as numbers
        first = scored.seq_start + warming
        columns: list[Column] = [
            b',{"reading_id":' + orjson.dumps(scored.id_prefix)[:-1],
            _json_numbers(np.arange(first, first + count)),
            b'","status":"scored","error":',
        ]
    else:
        columns = [
            b',{"reading_id":',
            [orjson.dumps(rid) for rid in ids[warming:]],
            b',"status":"scored","error":',
        ]
    columns += [
        _json_numbers(scored.errors),
        b',"score":',
        _json_numbers(scored.scores),
        _AFTER_SCORE[scored.anomalies.astype(np.intp)].tolist(),
        _json_numbers(scored.smoothed),
        _AFTER_SMOOTHED[states].tolist(),
    ]
    names = [orjson.dumps(name) for name in scored.model.sensors]
    first_entry = np.array([b'{"sensor":' + n + b',"share":' for n in names], dtype=object)
    next_entry = np.array([b'},{"sensor":' + n + b',"share":' for n in names], dtype=object)
    share_text = _json_numbers(shares.ravel())
    observed_text = _json_numbers(observed.astype(np.float64).ravel())
    reconstructed_text = (
        _json_numbers(reconstructed.astype(np.float64).ravel())
        if scored.model.expects_readings
        else [b"null"] * (count * k)
    )
    for j in range(k):
        columns += [
            (first_entry if j == 0 else next_entry)[scored.top_index[:, j]].tolist(),
            share_text[j::k],
            b',"observed":',
            observed_text[j::k],
            b',"reconstructed":',
            reconstructed_text[j::k],
        ]
    tail = orjson.dumps(common)[1:]  # '"model":...,"threshold_version":N}'
    if scored.timestamps is None:
        columns.append(b"}]," + tail)
    else:
        columns += [
            b"}]," + tail[:-1] + b',"timestamp":',
            _json_numbers(scored.timestamps[warming:]),
            b"}",
        ]
    rows = zip(*(repeat(c, count) if isinstance(c, bytes) else c for c in columns), strict=True)
    return b"".join(chain.from_iterable(rows))[1:]


def _columnar_fields(scored: ScoredBatch) -> dict[str, Any]:
    """The bulk reply's fields: one array per field, ids as a range."""
    model = scored.model
    thr = scored.threshold
    warming = scored.warming
    count = len(scored.values)
    if scored.reading_ids is not None:
        first_id, last_id = scored.reading_ids[0], scored.reading_ids[-1]
    else:
        first_id = f"{scored.id_prefix}{scored.seq_start}"
        last_id = f"{scored.id_prefix}{scored.seq_start + count - 1}"
    body = {
        "stream_id": scored.stream_id,
        "model": model.name,
        "model_version": model.version,
        "threshold": thr.value,
        "threshold_version": thr.version,
        "count": count,
        "warming_up": warming,
        "first_reading_id": first_id,
        "last_reading_id": last_id,
        "alerts_raised": scored.alerts_raised,
        "sensors": model.sensors,
        "error": scored.errors,
        "score": scored.scores,
        "anomaly": scored.anomalies,
        "smoothed_score": scored.smoothed,
        "alert": scored.states[warming:] == ALERT,
        "alert_state_code": scored.states[warming:],
        "alert_state_names": STATE_NAMES,
        "top_sensor_index": scored.top_index.astype(np.int32),
        "top_sensor_share": scored.top_share,
        **_maintenance_fields(scored),
    }
    return body


def render_columnar(scored: ScoredBatch) -> bytes:
    """The bulk reply as JSON (numpy serialised natively)."""
    return orjson.dumps(_columnar_fields(scored), option=orjson.OPT_SERIALIZE_NUMPY)


def render_npz(scored: ScoredBatch) -> bytes:
    """The bulk reply as an uncompressed ``.npz``: the same fields, each an array (scalars
    and names 0-d or 1-d), for clients that want numpy arrays back without parsing JSON."""
    arrays = {
        name: np.asarray(value)
        for name, value in _columnar_fields(scored).items()
        if value is not None
    }
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()
