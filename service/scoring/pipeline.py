"""One scoring request end to end: validate → engine → decision → smoothing → record.

Everything that can reject a request runs before any stream state is touched, so a
rejected request leaves the service exactly as it was.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from prometheus_client.metrics import Histogram

from service.errors import FieldError, InvalidReading
from service.metrics import ERROR_QUANTILES, Metrics
from service.scoring.decision import ALERT, STATE_NAMES, WARMING_UP, AlertDebouncer, decide
from service.scoring.payload import ParsedRequest, Readings, to_readings
from service.scoring.recent import ReadingChunk, RecentReadings
from service.scoring.registry import LoadedModel, ModelRegistry
from service.scoring.rolling import RollingQuantiles
from service.scoring.smoothing import make_smoother
from service.scoring.streams import StreamState, StreamStates
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
    reconstruction: np.ndarray  # float32 (s, n)
    alerts_raised: int


class _ModelSeries:
    """A model's metric children, resolved once instead of a ``.labels()`` per request."""

    __slots__ = ("alerts", "anomalies", "errors", "quantiles", "readings", "scores", "top_sensor")

    def __init__(self, metrics: Metrics, model: LoadedModel, quantile_window: int) -> None:
        name = model.name
        self.readings = metrics.readings_scored.labels(name)
        self.anomalies = metrics.anomalies.labels(name)
        self.alerts = metrics.alerts.labels(name)
        self.errors = metrics.reconstruction_error.labels(name)
        self.scores = metrics.score.labels(name)
        self.top_sensor = [metrics.top_sensor.labels(name, s) for s in model.sensors]
        self.quantiles = RollingQuantiles(quantile_window, ERROR_QUANTILES)


def observe_many(histogram: Histogram, values: np.ndarray) -> None:
    """``observe`` for a whole array: one searchsorted instead of a Python loop per value."""
    if len(values) < 8:  # a Python loop beats numpy's per-call overhead here
        for value in values.tolist():
            histogram.observe(value)
        return
    bounds = np.asarray(histogram._upper_bounds)
    counts = np.bincount(np.searchsorted(bounds, values, side="left"), minlength=len(bounds))
    for index in np.flatnonzero(counts).tolist():
        histogram._buckets[index].inc(int(counts[index]))
    histogram._sum.inc(float(values.sum()))


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

    def score(self, parsed: ParsedRequest) -> ScoreOutcome:
        received_at = self._clock()
        model = self.registry.get(parsed.model)
        readings: Readings = to_readings(parsed, model.sensors, model.sensor_index)
        values = readings.values
        batch = len(values)

        key = (model.name, parsed.stream_id)
        state = self.streams.peek(key)
        if state is None or state.model_version != model.version:
            state = self._new_state(model, self.streams.clock())
        history = state.filled
        windows, warming = state.windows(values)
        threshold = self.thresholds.get(model.name)
        if len(windows):
            squared, reconstruction = model.engine.score(windows)
        else:
            squared = np.empty((0, model.manifest.n_sensors), dtype=np.float32)
            reconstruction = squared
        if not np.isfinite(squared).all():
            reject_overflow(squared, model, warming)
        decisions = decide(squared, threshold.value, self.settings.top_k_sensors)

        # Nothing below can reject the request: commit state.
        smoothed = state.smoother.update_many(decisions.scores)
        states = np.full(batch, WARMING_UP, dtype=np.int8)
        states[warming:], raised = state.debouncer.update_many(smoothed)
        state.push(values)
        self.streams.commit(key, state)

        seq_start = self.recent.reserve(batch)
        prefix = self.recent.id_prefix
        reading_ids: list[str] | None = None
        if readings.reading_ids is not None:
            reading_ids = [
                x if x is not None else f"{prefix}{seq_start + i}"
                for i, x in enumerate(readings.reading_ids)
            ]
        self._record(
            model, parsed.stream_id, threshold, seq_start, reading_ids, received_at,
            readings.timestamps, values, warming, decisions.errors, squared,
            decisions.anomalies, states, raised, decisions.top_index,
        )  # fmt: skip
        return ScoreOutcome(
            model=model,
            stream_id=parsed.stream_id,
            threshold=threshold,
            reading_ids=reading_ids,
            id_prefix=prefix,
            seq_start=seq_start,
            timestamps=readings.timestamps,
            warming=warming,
            history=history,
            values=values,
            errors=decisions.errors,
            scores=decisions.scores,
            anomalies=decisions.anomalies,
            smoothed=smoothed,
            states=states,
            top_index=decisions.top_index,
            top_share=decisions.top_share,
            reconstruction=reconstruction,
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
        squared: np.ndarray,
        anomalies: np.ndarray,
        states: np.ndarray,
        raised: int,
        top_index: np.ndarray,
    ) -> None:
        batch = len(values)
        if warming:
            pad = np.full(warming, np.nan)
            all_errors = np.concatenate((pad, errors))
            all_squared = np.concatenate(
                (np.full((warming, squared.shape[1]), np.nan, dtype=np.float32), squared)
            )
            all_anomalies = np.concatenate((np.zeros(warming, dtype=bool), anomalies))
        else:
            all_errors, all_squared, all_anomalies = errors, squared, anomalies
        if timestamps is None:
            stamps = np.full(batch, received_at)
        else:
            stamps = np.where(np.isnan(timestamps), received_at, timestamps)
        self.recent.add(
            ReadingChunk.of_request(
                seq_start=seq_start,
                ids=chunk_ids,
                stream_id=stream_id,
                model=model.name,
                model_version=model.version,
                received_at=received_at,
                timestamps=stamps,
                errors=all_errors,
                squared=all_squared,
                values=values,
                threshold=threshold.value,
                threshold_version=threshold.version,
                anomaly=all_anomalies,
                alert=states == ALERT,
            )
        )
        series = self.series(model)
        scored = len(errors)
        if not scored:
            return
        series.readings.inc(scored)
        n_anomalies = int(anomalies.sum())
        if n_anomalies:
            series.anomalies.inc(n_anomalies)
            top = np.bincount(top_index[anomalies, 0], minlength=len(series.top_sensor))
            for sensor in np.flatnonzero(top).tolist():
                series.top_sensor[sensor].inc(int(top[sensor]))
        if raised:
            series.alerts.inc(raised)
        observe_many(series.errors, errors)
        observe_many(series.scores, errors / threshold.value)
        series.quantiles.add(errors)


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
    """The per-reading JSON reply, built from column lists and serialised once."""
    model = outcome.model
    sensors = model.sensors
    thr = outcome.threshold
    common = {
        "model": model.name,
        "model_version": model.version,
        "threshold": thr.value,
        "threshold_version": thr.version,
    }
    results: list[dict[str, Any]] = []
    warming = outcome.warming
    ids = outcome.reading_ids
    if ids is None:
        prefix, start = outcome.id_prefix, outcome.seq_start
        ids = [f"{prefix}{seq}" for seq in range(start, start + len(outcome.values))]
    window = model.window
    for i in range(warming):
        results.append(
            {
                "reading_id": ids[i],
                "status": "warming_up",
                "alert_state": "warming_up",
                "alert": False,
                "readings_needed": window - 1 - outcome.history - i,
                **common,
            }
        )
    if len(outcome.errors):
        # Column lists, then one comprehension: no per-value numpy access, no ** merges.
        # The top-sensor dicts come from flat columns in one pass, then are sliced per
        # reading: a nested comprehension per reading costs ~3x more on large batches.
        top_index = outcome.top_index
        k = top_index.shape[1]
        rows = np.arange(len(top_index))[:, None]
        flat = [
            {"sensor": a, "share": b, "observed": c, "reconstructed": d}
            for a, b, c, d in zip(
                [sensors[j] for j in top_index.ravel().tolist()],
                outcome.top_share.ravel().tolist(),
                outcome.values[warming:][rows, top_index].ravel().tolist(),
                outcome.reconstruction[rows, top_index].ravel().tolist(),
                strict=True,
            )
        ]
        tops = [flat[start : start + k] for start in range(0, len(flat), k)]
        name, version, value, thr_version = model.name, model.version, thr.value, thr.version
        results.extend(
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
                ids[warming:],
                outcome.errors.tolist(),
                outcome.scores.tolist(),
                outcome.anomalies.tolist(),
                outcome.smoothed.tolist(),
                outcome.states[warming:].tolist(),
                tops,
                strict=True,
            )
        )
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


def render_columnar(outcome: ScoreOutcome) -> bytes:
    """The bulk reply: one array per field (numpy serialised natively), ids as a range."""
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
    return orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
