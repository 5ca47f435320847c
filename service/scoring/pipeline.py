"""One scoring request end to end: validate → engine → decision → smoothing → record.

Everything that can reject a request runs before any stream state is touched, so a
rejected request leaves the service exactly as it was. A scored request becomes one
:class:`~service.scoring.scored.ScoredBatch`, which the recent-readings store and the
metrics tally take as it is and the caller encodes as its reply.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from service.errors import FieldError, InvalidReading
from service.metrics import Metrics
from service.scoring.decision import (
    WARMING_UP,
    AlertDebouncer,
    WindowMatch,
    decide,
    suppress_alerts,
)
from service.scoring.payload import ParsedRequest, Readings, to_readings
from service.scoring.recent import RecentReadings
from service.scoring.registry import VALUE_REACH, LoadedModel, ModelRegistry
from service.scoring.scored import ScoredBatch
from service.scoring.smoothing import make_smoother, stream_smoothing
from service.scoring.streams import StreamKey, StreamState, StreamStates, StreamView
from service.scoring.thresholds import ThresholdBoard, ThresholdSnapshot
from service.settings import Settings

_NO_ROWS = np.empty((0, 0), dtype=np.float32)
# The ufuncs' own reductions: ndarray.min/max add a Python wrapper per call.
_min, _max = np.minimum.reduce, np.maximum.reduce
# (model, stream id, Unix time) -> the maintenance windows that cover it, if any.
WindowLookup = Callable[[str, str, float], WindowMatch | None]


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
    glitched: int  # readings the glitch guard acted on, counted when the request commits
    threshold: ThresholdSnapshot
    received_at: float
    squared: np.ndarray = field(default_factory=lambda: _NO_ROWS)  # set by the model call
    reconstruction: np.ndarray = field(default_factory=lambda: _NO_ROWS)


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
        windows: WindowLookup | None = None,
    ) -> None:
        self.settings = settings
        self.windows = windows
        self.registry = registry
        self.thresholds = thresholds
        self.streams = streams
        self.recent = recent
        self.metrics = metrics
        self.tally = metrics.scoring
        self._clock = time.time

    def new_state(self, model: LoadedModel, now: float) -> StreamState:
        """A stream's state before its first reading."""
        s = self.settings
        threshold = self.thresholds.get(model.name).value
        return StreamState(
            make_smoother(stream_smoothing(s, model.manifest.smoothing), threshold),
            AlertDebouncer(s.alert_k, s.alert_n, s.alert_cooldown),
            window=model.window,
            n_sensors=model.manifest.n_sensors,
            model_version=model.version,
            now=now,
            limits=model.glitch_limits,
            unit=threshold,
            artifact=model.fingerprint,
        )

    def score(self, parsed: ParsedRequest, *, reconstruct: bool = True) -> ScoredBatch:
        """``reconstruct=False``: the reply shows no reconstructed values (the columnar
        one), so the model may skip computing them (the outcome's are then empty)."""
        scored = self.compute(parsed, self.streams, reconstruct=reconstruct)
        self.record(scored)
        return scored

    def score_many(self, requests: list[ParsedRequest]) -> list[ScoredBatch | Exception]:
        """:meth:`compute_many` on this process's stream states, each scored request recorded."""
        outcomes = self.compute_many(requests, self.streams)
        for outcome in outcomes:
            if not isinstance(outcome, Exception):
                self.record(outcome)
        return outcomes

    def record(self, scored: ScoredBatch) -> None:
        """A scored request joins the recent readings and the metrics: once its stream's new
        state is kept (here at once; with shared state, once the shared copy took it)."""
        self.recent.add(scored)
        self.tally.add(scored)

    def compute(
        self, parsed: ParsedRequest, streams: StreamView, *, reconstruct: bool = True
    ) -> ScoredBatch:
        """One request scored against ``streams``, its new state committed there; not
        recorded (:meth:`record`)."""
        job = self._prepare(parsed, self.registry.get(parsed.model), streams)
        self._infer([job], reconstruct=reconstruct)
        return self._finish(job, streams)

    def compute_many(
        self, requests: list[ParsedRequest], streams: StreamView
    ) -> list[ScoredBatch | Exception]:
        """Several requests with one model call per run of them, each answered (or refused)
        as :meth:`score` would in this order. A run ends where the model changes, or where
        a stream comes again to a windowed model (its windows need the earlier request's
        readings); with a window of 1 a stream's requests share the run and its state,
        which they update in order after the model call."""
        outcomes: list[ScoredBatch | Exception] = []
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
                        outcomes.append(self._finish(job, streams))
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
                job = self._prepare(parsed, model, streams, states.get(key))
            except Exception as exc:
                finish_run()  # keep the answers in request order
                outcomes.append(exc)
                continue
            run.append(job)
            states[key] = job.state
        finish_run()
        return outcomes

    def _prepare(
        self,
        parsed: ParsedRequest,
        model: LoadedModel,
        streams: StreamView,
        state: StreamState | None = None,
    ) -> _Job:
        """Everything before the model call; reads the stream's state (``state``: the one
        an earlier request of the same run uses), changes nothing."""
        received_at = self._clock()
        readings: Readings = to_readings(parsed, model.sensors, model.sensor_index)
        values = readings.values
        low, high = model.within
        # A bound on every value's size found by validation settles it without a pass
        # (float32 rounding never crosses the float32 bounds); else two reductions prove
        # the common case, and the per-sensor comparison runs only when they cannot.
        size = readings.magnitude
        if (size is None or size > high or -size < low) and (
            _min(values, axis=None) < low or _max(values, axis=None) > high
        ):
            reject_out_of_reach(values, model)
        key = (model.name, parsed.stream_id)
        if state is None:
            state = streams.peek(key)
            if state is None or not state.belongs_to(model.version, model.fingerprint):
                state = self.new_state(model, streams.clock())
        inputs = state.windows(readings.values)
        return _Job(
            parsed, model, readings, key, state, state.context, inputs.windows, inputs.warming,
            inputs.glitched, self.thresholds.get(model.name), received_at,
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

    def _finish(self, job: _Job, streams: StreamView) -> ScoredBatch:
        model, readings, state, warming = job.model, job.readings, job.state, job.warming
        squared, threshold = job.squared, job.threshold
        values = readings.values
        batch = len(values)
        if not np.isfinite(squared).all():
            reject_overflow(squared, model, warming)
        decisions = decide(squared, threshold.value, self.settings.top_k_sensors)

        # Nothing below can reject the request: commit state.
        state.in_units(threshold.value)
        smoothed = state.smoother.update_many(decisions.scores)
        # A model that declares its smoothing had its threshold set on smoothed scores: what
        # it flags is the smoothed score above 1, the rate its manifest states.
        anomalies = smoothed > 1.0 if model.manifest.smoothing is not None else decisions.anomalies
        states = np.full(batch, WARMING_UP, dtype=np.int8)
        states[warming:], raised = state.debouncer.update_many(smoothed)
        match = (
            self.windows(model.name, job.parsed.stream_id, job.received_at)
            if self.windows is not None
            else None
        )
        held = 0
        if match is not None and match.suppressed_by is not None:
            states, raised, held = suppress_alerts(states, raised)
        state.push(values)
        streams.commit(job.key, state)

        seq_start = self.recent.reserve(batch)
        prefix = self.recent.id_prefix
        reading_ids: list[str] | None = None
        if readings.reading_ids is not None:
            reading_ids = [
                x if x is not None else f"{prefix}{seq_start + i}"
                for i, x in enumerate(readings.reading_ids)
            ]
        scored = ScoredBatch(
            model=model,
            stream_id=job.parsed.stream_id,
            threshold=threshold,
            seq_start=seq_start,
            id_prefix=prefix,
            reading_ids=reading_ids,
            received_at=job.received_at,
            timestamps=readings.timestamps,
            warming=warming,
            history=job.history,
            values=values,
            errors=decisions.errors,
            scores=decisions.scores,
            anomalies=anomalies,
            smoothed=smoothed,
            states=states,
            top_index=decisions.top_index,
            top_share=decisions.top_share,
            squared=squared,
            reconstruction=job.reconstruction,
            alerts_raised=raised,
            maintenance=match,
            alerts_suppressed=held,
            glitched=job.glitched,
        )
        return scored


def reject_out_of_reach(values: np.ndarray, model: LoadedModel) -> None:
    """Refuses values further from the training data than any reading could be (the bounds
    the OpenAPI document states per sensor) rather than score them as noise, or as an error
    too large to report; returns when every value is within its own sensor's bounds."""
    rows, cols = np.nonzero((values < model.value_low) | (values > model.value_high))
    if not len(rows):
        return
    errors = [
        FieldError(
            f"values[{c}]",
            f"sensor {model.sensors[c]}: outside [{model.value_low[c]:.6g}, "
            f"{model.value_high[c]:.6g}], {VALUE_REACH:.0e} training standard deviations "
            "from its training mean",
            reading_index=r,
        )
        for r, c in zip(rows[:20].tolist(), cols[:20].tolist(), strict=True)
    ]
    raise InvalidReading(
        f"{len(set(rows.tolist()))} reading(s) hold values beyond the model's range "
        f"(first: reading {rows[0]}, values[{cols[0]}])",
        errors=errors,
    )


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
