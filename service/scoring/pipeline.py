"""One scoring request end to end: validate → engine → decision → smoothing → record.

Everything that can reject a request runs before any stream state is touched, so a
rejected request leaves the service exactly as it was.
"""

from __future__ import annotations

import io
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any

import numpy as np
import orjson
from prometheus_client.metrics import Histogram

from service.errors import FieldError, InvalidReading
from service.metrics import ERROR_QUANTILES, Metrics
from service.scoring.decision import ALERT, STATE_NAMES, WARMING_UP, AlertDebouncer, decide
from service.scoring.payload import ParsedRequest, Readings, to_readings
from service.scoring.recent import RecentReadings
from service.scoring.registry import LoadedModel, ModelRegistry
from service.scoring.rolling import RollingQuantiles
from service.scoring.smoothing import make_smoother
from service.scoring.streams import StreamKey, StreamState, StreamStates
from service.scoring.thresholds import ThresholdBoard, ThresholdSnapshot
from service.settings import Settings


@dataclass(frozen=True, slots=True)
class ScoreOutcome:
    """A scored request, columnar; rows ``< warming`` carry no score."""

    model: LoadedModel
    stream_id: str
    threshold: ThresholdSnapshot
    reading_ids: list[str] | None  # None: every id is generated (id_prefix + seq_start + row)
    id_prefix: str
    seq_start: int
    timestamps: np.ndarray | None
    warming: int
    history: int  # readings the stream's window buffer held before this request
    values: np.ndarray  # float32 (b, n)
    errors: np.ndarray  # float64 (s,) for the s = b - warming scored rows
    scores: np.ndarray  # float64 (s,)
    anomalies: np.ndarray  # bool (s,)
    smoothed: np.ndarray  # float64 (s,)
    states: np.ndarray  # int8 (b,)
    top_index: np.ndarray  # int (s, k)
    top_share: np.ndarray  # float64 (s, k)
    reconstruction: np.ndarray  # float32 (s, n); (0, n) when not asked for
    alerts_raised: int


_NO_ROWS = np.empty((0, 0), dtype=np.float32)


@dataclass(slots=True)
class _Job:
    """A request between its preparation and its model call's results."""

    parsed: ParsedRequest
    model: LoadedModel
    readings: Readings
    key: StreamKey
    state: StreamState
    history: int
    windows: np.ndarray
    warming: int
    threshold: ThresholdSnapshot
    received_at: float
    squared: np.ndarray = field(default_factory=lambda: _NO_ROWS)  # set by the model call
    reconstruction: np.ndarray = field(default_factory=lambda: _NO_ROWS)


class _ModelSeries:
    """A model's metric children, resolved once, and the counts not yet moved into them.

    The hot path adds to plain Python numbers: a prometheus ``inc``/``observe`` takes a
    lock and a request made ~10 of them, more than the rest of a single reading's
    bookkeeping. :meth:`flush` moves the counts in, and runs before every read of the
    registry (``Metrics.before_collect``), so a scrape still sees exact counts.
    """

    __slots__ = (
        "alerts", "anomalies", "error_bounds", "error_buckets", "error_sum", "errors",
        "pending_alerts", "pending_anomalies", "pending_errors", "pending_readings",
        "pending_top", "quantiles", "readings", "score_bounds", "score_buckets", "score_sum",
        "scores", "top_sensor",
    )  # fmt: skip

    def __init__(self, metrics: Metrics, model: LoadedModel, quantile_window: int) -> None:
        name = model.name
        self.readings = metrics.readings_scored.labels(name)
        self.anomalies = metrics.anomalies.labels(name)
        self.alerts = metrics.alerts.labels(name)
        self.errors = metrics.reconstruction_error.labels(name)
        self.scores = metrics.score.labels(name)
        self.top_sensor = [metrics.top_sensor.labels(name, s) for s in model.sensors]
        self.quantiles = RollingQuantiles(quantile_window, ERROR_QUANTILES)
        self.error_bounds: list[float] = list(self.errors._upper_bounds)
        self.score_bounds: list[float] = list(self.scores._upper_bounds)
        self.pending_readings = self.pending_anomalies = self.pending_alerts = 0
        self.pending_top = [0] * len(self.top_sensor)
        self.error_buckets = [0] * len(self.error_bounds)
        self.score_buckets = [0] * len(self.score_bounds)
        self.error_sum = self.score_sum = 0.0
        self.pending_errors: list[np.ndarray] = []

    def add(
        self,
        errors: np.ndarray,
        scores: np.ndarray,
        anomalies: np.ndarray,
        top_index: np.ndarray,
        raised: int,
    ) -> None:
        """Count a request's scored readings (errors, scores and flags of each)."""
        scored = len(errors)
        self.pending_readings += scored
        self.pending_alerts += raised
        if scored < _LOOP_MAX:
            for error in errors.tolist():
                self.error_buckets[bisect_left(self.error_bounds, error)] += 1
                self.error_sum += error
            for score in scores.tolist():
                self.score_buckets[bisect_left(self.score_bounds, score)] += 1
                self.score_sum += score
            for row, flagged in enumerate(anomalies.tolist()):
                if flagged:
                    self.pending_anomalies += 1
                    self.pending_top[int(top_index[row, 0])] += 1
        else:
            _add_counts(self.error_buckets, np.searchsorted(self.error_bounds, errors))
            _add_counts(self.score_buckets, np.searchsorted(self.score_bounds, scores))
            self.error_sum += float(errors.sum())
            self.score_sum += float(scores.sum())
            n_anomalies = int(anomalies.sum())
            if n_anomalies:
                self.pending_anomalies += n_anomalies
                _add_counts(self.pending_top, top_index[anomalies, 0])
        if scored >= _QUANTILE_DIRECT:
            self.quantiles.add(errors)
        elif scored:
            self.pending_errors.append(errors)
            if len(self.pending_errors) >= _QUANTILE_DIRECT:
                self._flush_quantiles()

    def flush(self) -> None:
        if self.pending_readings:
            self.readings.inc(self.pending_readings)
            self.pending_readings = 0
        if self.pending_anomalies:
            self.anomalies.inc(self.pending_anomalies)
            self.pending_anomalies = 0
            for sensor, count in enumerate(self.pending_top):
                if count:
                    self.top_sensor[sensor].inc(count)
                    self.pending_top[sensor] = 0
        if self.pending_alerts:
            self.alerts.inc(self.pending_alerts)
            self.pending_alerts = 0
        self.error_sum = _flush_histogram(self.errors, self.error_buckets, self.error_sum)
        self.score_sum = _flush_histogram(self.scores, self.score_buckets, self.score_sum)
        self._flush_quantiles()

    def _flush_quantiles(self) -> None:
        if self.pending_errors:
            self.quantiles.add(np.concatenate(self.pending_errors))
            self.pending_errors.clear()


# Below this many readings, Python loops beat numpy's per-call overhead.
_LOOP_MAX = 8
# Requests with this many readings go straight into the rolling quantiles; smaller ones
# are gathered until this many requests wait.
_QUANTILE_DIRECT = 64


def _add_counts(totals: list[int], indices: np.ndarray) -> None:
    counts = np.bincount(indices, minlength=len(totals))
    for index in np.flatnonzero(counts).tolist():
        totals[index] += int(counts[index])


def _flush_histogram(histogram: Histogram, buckets: list[int], total: float) -> float:
    """Move gathered bucket counts and sum into ``histogram``; returns the new pending sum."""
    if any(buckets):
        for index, count in enumerate(buckets):
            if count:
                histogram._buckets[index].inc(count)
                buckets[index] = 0
        histogram._sum.inc(total)
    return 0.0


class ScoringPipeline:
    """Scores requests against the registry's models and the stream states."""

    def __init__(
        self,
        settings: Settings,
        registry: ModelRegistry,
        thresholds: ThresholdBoard,
        streams: StreamStates,
        recent: RecentReadings,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.thresholds = thresholds
        self.streams = streams
        self.recent = recent
        self.metrics = metrics
        self._series: dict[tuple[str, str], _ModelSeries] = {}
        self._clock = time.time
        metrics.before_collect.append(self.flush_metrics)

    def flush_metrics(self) -> None:
        """Move the counts gathered on the hot path into the collectors."""
        for series in self._series.values():
            series.flush()

    def series(self, model: LoadedModel) -> _ModelSeries:
        key = (model.name, model.version)
        series = self._series.get(key)
        if series is None:
            series = _ModelSeries(self.metrics, model, self.settings.error_quantile_window)
            self._series[key] = series
        return series

    def rolling_quantiles(self) -> dict[str, dict[float, float]]:
        """Per served model, the rolling error quantiles (computed now, if stale)."""
        served = {(m.name, m.version) for m in self.registry.models()}
        self.flush_metrics()
        return {
            name: s.quantiles.compute()
            for (name, v), s in self._series.items()
            if (name, v) in served
        }

    def _new_state(self, model: LoadedModel, now: float) -> StreamState:
        s = self.settings
        return StreamState(
            make_smoother(s.smoothing_method, window=s.smoothing_window, alpha=s.ewma_alpha),
            AlertDebouncer(s.alert_k, s.alert_n, s.alert_cooldown),
            window=model.window,
            n_sensors=model.manifest.n_sensors,
            model_version=model.version,
            now=now,
        )

    def score(self, parsed: ParsedRequest, *, reconstruct: bool = True) -> ScoreOutcome:
        """``reconstruct=False``: the reply shows no reconstructed values (the columnar
        one), so the model may skip computing them (the outcome's are then empty)."""
        job = self._prepare(parsed, self.registry.get(parsed.model))
        self._infer([job], reconstruct=reconstruct)
        return self._finish(job)

    def score_many(self, requests: list[ParsedRequest]) -> list[ScoreOutcome | Exception]:
        """Several requests with one model call per run of them, each answered (or refused)
        as :meth:`score` would in this order. A run ends where the model changes, or where
        a stream comes again to a windowed model (its windows need the earlier request's
        readings); with a window of 1 a stream's requests share the run and its state,
        which they update in order after the model call."""
        outcomes: list[ScoreOutcome | Exception] = []
        run: list[_Job] = []
        states: dict[StreamKey, StreamState] = {}

        def finish_run() -> None:
            try:
                self._infer(run)
            except Exception as exc:  # the model failed: every request of the run fails
                outcomes.extend(exc for _ in run)
            else:
                for job in run:
                    try:
                        outcomes.append(self._finish(job))
                    except Exception as exc:
                        outcomes.append(exc)
            run.clear()
            states.clear()

        for parsed in requests:
            try:
                model = self.registry.get(parsed.model)
                key = (model.name, parsed.stream_id)
                if run and (model is not run[0].model or (key in states and model.window > 1)):
                    finish_run()
                job = self._prepare(parsed, model, states.get(key))
            except Exception as exc:
                finish_run()  # keep the answers in request order
                outcomes.append(exc)
                continue
            run.append(job)
            states[key] = job.state
        finish_run()
        return outcomes

    def _prepare(
        self, parsed: ParsedRequest, model: LoadedModel, state: StreamState | None = None
    ) -> _Job:
        """Everything before the model call; reads the stream's state (``state``: the one
        an earlier request of the same run uses), changes nothing."""
        received_at = self._clock()
        readings: Readings = to_readings(parsed, model.sensors, model.sensor_index)
        key = (model.name, parsed.stream_id)
        if state is None:
            state = self.streams.peek(key)
            if state is None or state.model_version != model.version:
                state = self._new_state(model, self.streams.clock())
        windows, warming = state.windows(readings.values)
        return _Job(
            parsed, model, readings, key, state, state.filled, windows, warming,
            self.thresholds.get(model.name), received_at,
        )  # fmt: skip

    @staticmethod
    def _infer(jobs: list[_Job], *, reconstruct: bool = True) -> None:
        """One model call for the jobs' windows (all of one model)."""
        if not jobs:
            return
        model = jobs[0].model
        windows = [job.windows for job in jobs if len(job.windows)]
        if not windows:
            squared = np.empty((0, model.manifest.n_sensors), dtype=np.float32)
            reconstruction = squared
        else:
            squared, reconstruction = model.engine.score(
                windows[0] if len(windows) == 1 else np.concatenate(windows),
                reconstruct=reconstruct,
            )
        start = 0
        for job in jobs:
            stop = start + len(job.windows)
            job.squared, job.reconstruction = squared[start:stop], reconstruction[start:stop]
            start = stop

    def _finish(self, job: _Job) -> ScoreOutcome:
        model, readings, state, warming = job.model, job.readings, job.state, job.warming
        squared, threshold = job.squared, job.threshold
        values = readings.values
        batch = len(values)
        if not np.isfinite(squared).all():
            reject_overflow(squared, model, warming)
        decisions = decide(squared, threshold.value, self.settings.top_k_sensors)

        # Nothing below can reject the request: commit state.
        smoothed = state.smoother.update_many(decisions.scores)
        states = np.full(batch, WARMING_UP, dtype=np.int8)
        states[warming:], raised = state.debouncer.update_many(smoothed)
        state.push(values)
        self.streams.commit(job.key, state)

        stream_id = job.parsed.stream_id
        seq_start = self.recent.reserve(batch)
        prefix = self.recent.id_prefix
        reading_ids: list[str] | None = None
        if readings.reading_ids is not None:
            reading_ids = [
                x if x is not None else f"{prefix}{seq_start + i}"
                for i, x in enumerate(readings.reading_ids)
            ]
        self._record(
            model, stream_id, threshold, seq_start, reading_ids, job.received_at,
            readings.timestamps, values, warming, decisions.errors, decisions.scores,
            squared, decisions.anomalies, states, raised, decisions.top_index,
        )  # fmt: skip
        return ScoreOutcome(
            model=model,
            stream_id=stream_id,
            threshold=threshold,
            reading_ids=reading_ids,
            id_prefix=prefix,
            seq_start=seq_start,
            timestamps=readings.timestamps,
            warming=warming,
            history=job.history,
            values=values,
            errors=decisions.errors,
            scores=decisions.scores,
            anomalies=decisions.anomalies,
            smoothed=smoothed,
            states=states,
            top_index=decisions.top_index,
            top_share=decisions.top_share,
            reconstruction=job.reconstruction,
            alerts_raised=raised,
        )

    def _record(
        self,
        model: LoadedModel,
        stream_id: str,
        threshold: ThresholdSnapshot,
        seq_start: int,
        chunk_ids: list[str] | None,
        received_at: float,
        timestamps: np.ndarray | None,
        values: np.ndarray,
        warming: int,
        errors: np.ndarray,
        scores: np.ndarray,
        squared: np.ndarray,
        anomalies: np.ndarray,
        states: np.ndarray,
        raised: int,
        top_index: np.ndarray,
    ) -> None:
        if warming:
            pad = np.full(warming, np.nan)
            all_errors = np.concatenate((pad, errors))
            all_squared = np.concatenate(
                (np.full((warming, squared.shape[1]), np.nan, dtype=np.float32), squared)
            )
            all_anomalies = np.concatenate((np.zeros(warming, dtype=bool), anomalies))
        else:
            all_errors, all_squared, all_anomalies = errors, squared, anomalies
        self.recent.add_request(
            seq_start=seq_start,
            ids=chunk_ids,
            stream_id=stream_id,
            model=model.name,
            model_version=model.version,
            received_at=received_at,
            timestamps=timestamps,
            errors=all_errors,
            squared=all_squared,
            values=values,
            threshold=threshold.value,
            threshold_version=threshold.version,
            anomaly=all_anomalies,
            alert=states == ALERT,
        )
        self.series(model).add(errors, scores, anomalies, top_index, raised)


def reject_overflow(squared: np.ndarray, model: LoadedModel, warming: int) -> None:
    """Finite input so far from the training data that its error overflows: refuse it (422)
    rather than report an infinite score that JSON cannot carry."""
    rows, cols = np.nonzero(~np.isfinite(squared))
    errors = [
        FieldError(
            f"values[{c}]",
            f"sensor {model.sensors[c]}: the value is so far outside the model's training range "
            "that its error overflows",
            reading_index=warming + r,
        )
        for r, c in zip(rows[:20].tolist(), cols[:20].tolist(), strict=True)
    ]
    raise InvalidReading(
        f"{len(set(rows.tolist()))} reading(s) are out of the model's numeric range "
        f"(first: reading {errors[0].reading_index}, {errors[0].field})",
        errors=errors,
    )


def render_json(outcome: ScoreOutcome, single: bool) -> bytes:
    """The per-reading JSON reply. Large batches are rendered column by column
    (:func:`_scored_fragments`); the bytes are the same either way."""
    model = outcome.model
    thr = outcome.threshold
    common = {
        "model": model.name,
        "model_version": model.version,
        "threshold": thr.value,
        "threshold_version": thr.version,
    }
    if single or len(outcome.errors) < _FRAGMENTS_MIN:
        ids = _reading_ids(outcome)
        results = _warming_results(outcome, ids, common) + _scored_results(outcome, ids)
        if outcome.timestamps is not None:
            for result, stamp in zip(results, outcome.timestamps.tolist(), strict=True):
                result["timestamp"] = None if stamp != stamp else stamp
        body: dict[str, Any] = {"stream_id": outcome.stream_id, **common}
        if single:
            body["result"] = results[0]
        else:
            body["results"] = results
            body["alerts_raised"] = outcome.alerts_raised
        return orjson.dumps(body)
    ids = outcome.reading_ids or _reading_ids(outcome, outcome.warming)
    warming = _warming_results(outcome, ids, common)
    if outcome.timestamps is not None:
        for result, stamp in zip(warming, outcome.timestamps.tolist(), strict=False):
            result["timestamp"] = None if stamp != stamp else stamp
    head = orjson.dumps({"stream_id": outcome.stream_id, **common})
    pieces = [head[:-1], b',"results":[']
    if warming:
        pieces += [orjson.dumps(warming)[1:-1], b","]
    pieces += [
        _scored_fragments(outcome, ids, common),
        b'],"alerts_raised":',
        str(outcome.alerts_raised).encode(),
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


def _reading_ids(outcome: ScoreOutcome, count: int | None = None) -> list[str]:
    """The first ``count`` (default: all) reading ids."""
    count = len(outcome.values) if count is None else count
    if outcome.reading_ids is not None:
        return outcome.reading_ids[:count]
    prefix, start = outcome.id_prefix, outcome.seq_start
    return [f"{prefix}{seq}" for seq in range(start, start + count)]


def _warming_results(
    outcome: ScoreOutcome, ids: list[str], common: dict[str, Any]
) -> list[dict[str, Any]]:
    needed = outcome.model.window - 1 - outcome.history
    return [
        {
            "reading_id": ids[i],
            "status": "warming_up",
            "alert_state": "warming_up",
            "alert": False,
            "readings_needed": needed - i,
            **common,
        }
        for i in range(outcome.warming)
    ]


def _top_columns(outcome: ScoreOutcome) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed and reconstructed values of each reading's top sensors, and their shares."""
    top_index = outcome.top_index
    rows = np.arange(len(top_index))[:, None]
    observed = outcome.values[outcome.warming :][rows, top_index]
    return outcome.top_share, observed, outcome.reconstruction[rows, top_index]


def _scored_results(outcome: ScoreOutcome, ids: list[str]) -> list[dict[str, Any]]:
    """Scored readings as dicts: the cheaper way for a few readings."""
    if not len(outcome.errors):
        return []
    model, thr = outcome.model, outcome.threshold
    sensors = model.sensors
    top_index = outcome.top_index
    k = top_index.shape[1]
    if len(top_index) == 1:  # one reading: Python indexing beats numpy's fancy indexing
        row = top_index[0].tolist()
        observed_row = outcome.values[outcome.warming].tolist()
        reconstructed_row = outcome.reconstruction[0].tolist()
        tops = [
            [
                {
                    "sensor": sensors[j],
                    "share": share,
                    "observed": observed_row[j],
                    "reconstructed": reconstructed_row[j],
                }
                for j, share in zip(row, outcome.top_share[0].tolist(), strict=True)
            ]
        ]
    else:
        shares, observed, reconstructed = _top_columns(outcome)
        # The top-sensor dicts come from flat columns in one pass, then are sliced per
        # reading: a nested comprehension per reading costs ~3x more.
        flat = [
            {"sensor": a, "share": b, "observed": c, "reconstructed": d}
            for a, b, c, d in zip(
                [sensors[j] for j in top_index.ravel().tolist()],
                shares.ravel().tolist(),
                observed.ravel().tolist(),
                reconstructed.ravel().tolist(),
                strict=True,
            )
        ]
        tops = [flat[start : start + k] for start in range(0, len(flat), k)]
    name, version, value, thr_version = model.name, model.version, thr.value, thr.version
    return [
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
            ids[outcome.warming :],
            outcome.errors.tolist(),
            outcome.scores.tolist(),
            outcome.anomalies.tolist(),
            outcome.smoothed.tolist(),
            outcome.states[outcome.warming :].tolist(),
            tops,
            strict=True,
        )
    ]


def _json_numbers(values: np.ndarray) -> list[bytes]:
    """Each value as orjson writes it; float64 values are written as Python floats are."""
    text = orjson.dumps(np.ascontiguousarray(values), option=orjson.OPT_SERIALIZE_NUMPY)
    return text[1:-1].split(b",")


def _scored_fragments(outcome: ScoreOutcome, ids: list[str], common: dict[str, Any]) -> bytes:
    """The scored readings' JSON objects, comma-separated, without building a dict per
    reading: every number column is written by orjson in one call (numpy arrays, split
    at the commas); keys, and values from a small set (flags, states, sensor names) with
    the keys around them, are ready-made fragments; one ``join`` interleaves the columns
    row by row. ~2x faster than dicts on 1,000 readings."""
    warming = outcome.warming
    count = len(outcome.errors)
    k = outcome.top_index.shape[1]
    shares, observed, reconstructed = _top_columns(outcome)
    states = outcome.states[warming:]
    if outcome.reading_ids is None:  # generated: prefix + sequence, written as numbers
        first = outcome.seq_start + warming
        columns: list[Column] = [
            b',{"reading_id":' + orjson.dumps(outcome.id_prefix)[:-1],
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
        _json_numbers(outcome.errors),
        b',"score":',
        _json_numbers(outcome.scores),
        _AFTER_SCORE[outcome.anomalies.astype(np.intp)].tolist(),
        _json_numbers(outcome.smoothed),
        _AFTER_SMOOTHED[states].tolist(),
    ]
    names = [orjson.dumps(name) for name in outcome.model.sensors]
    first_entry = np.array([b'{"sensor":' + n + b',"share":' for n in names], dtype=object)
    next_entry = np.array([b'},{"sensor":' + n + b',"share":' for n in names], dtype=object)
    share_text = _json_numbers(shares.ravel())
    observed_text = _json_numbers(observed.astype(np.float64).ravel())
    reconstructed_text = _json_numbers(reconstructed.astype(np.float64).ravel())
    for j in range(k):
        columns += [
            (first_entry if j == 0 else next_entry)[outcome.top_index[:, j]].tolist(),
            share_text[j::k],
            b',"observed":',
            observed_text[j::k],
            b',"reconstructed":',
            reconstructed_text[j::k],
        ]
    tail = orjson.dumps(common)[1:]  # '"model":...,"threshold_version":N}'
    if outcome.timestamps is None:
        columns.append(b"}]," + tail)
    else:
        columns += [
            b"}]," + tail[:-1] + b',"timestamp":',
            _json_numbers(outcome.timestamps[warming:]),
            b"}",
        ]
    rows = zip(*(repeat(c, count) if isinstance(c, bytes) else c for c in columns), strict=True)
    return b"".join(chain.from_iterable(rows))[1:]


def _columnar_fields(outcome: ScoreOutcome) -> dict[str, Any]:
    """The bulk reply's fields: one array per field, ids as a range."""
    model = outcome.model
    thr = outcome.threshold
    warming = outcome.warming
    count = len(outcome.values)
    if outcome.reading_ids is not None:
        first_id, last_id = outcome.reading_ids[0], outcome.reading_ids[-1]
    else:
        first_id = f"{outcome.id_prefix}{outcome.seq_start}"
        last_id = f"{outcome.id_prefix}{outcome.seq_start + count - 1}"
    body = {
        "stream_id": outcome.stream_id,
        "model": model.name,
        "model_version": model.version,
        "threshold": thr.value,
        "threshold_version": thr.version,
        "count": count,
        "warming_up": warming,
        "first_reading_id": first_id,
        "last_reading_id": last_id,
        "alerts_raised": outcome.alerts_raised,
        "sensors": model.sensors,
        "error": outcome.errors,
        "score": outcome.scores,
        "anomaly": outcome.anomalies,
        "smoothed_score": outcome.smoothed,
        "alert": outcome.states[warming:] == ALERT,
        "alert_state_code": outcome.states[warming:],
        "alert_state_names": STATE_NAMES,
        "top_sensor_index": outcome.top_index.astype(np.int32),
        "top_sensor_share": outcome.top_share,
    }
    return body


def render_columnar(outcome: ScoreOutcome) -> bytes:
    """The bulk reply as JSON (numpy serialised natively)."""
    return orjson.dumps(_columnar_fields(outcome), option=orjson.OPT_SERIALIZE_NUMPY)


def render_npz(outcome: ScoreOutcome) -> bytes:
    """The bulk reply as an uncompressed ``.npz``: the same fields, each an array (scalars
    and names 0-d or 1-d), for clients that want numpy arrays back without parsing JSON;
    about a quarter of the JSON reply's cost on 10k readings."""
    arrays = {
        name: np.asarray(value)
        for name, value in _columnar_fields(outcome).items()
        if value is not None
    }
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()
