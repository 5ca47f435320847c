"""Event-level figures: what a person on call sees, alerts rather than flagged readings.

Alerts are raised by the service's rule, reproduced here as pure functions (the service's
``scoring.smoothing`` and ``AlertDebouncer`` are stateful per stream and sit beside the web
app): a reading's score is divided by the threshold, smoothed, and an alert starts when
``k`` of the last ``n`` smoothed scores are above 1.0; once it clears, ``cooldown`` readings
pass (the clearing one included) before another can start. A test holds these functions to
the service's own objects.

Each figure is shown beside a random-placement baseline: the same number of alerts placed
uniformly at random (independently, with replacement) over the same scored readings,
computed exactly rather than simulated. An alerting rule that is no better than that
baseline says nothing about the labelled events.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SMOOTHING_METHODS = ("none", "mean", "median", "ewma")


@dataclass(frozen=True)
class AlertRule:
    """Smoothing and k-of-n debouncing with a cool-down. The defaults are the service's
    default settings (``smoothing_method``, ``smoothing_window``, ``ewma_alpha``,
    ``alert_k``, ``alert_n``, ``alert_cooldown``), which apply to a model that declares no
    smoothing of its own."""

    smoothing: str = "median"
    window: int = 3
    alpha: float = 0.5
    k: int = 3
    n: int = 5
    cooldown: int = 10

    def __post_init__(self) -> None:
        if self.smoothing not in SMOOTHING_METHODS:
            raise ValueError(f"smoothing must be one of {SMOOTHING_METHODS}")
        if self.window < 1 or not 0 < self.alpha <= 1:
            raise ValueError("need window >= 1 and alpha in (0, 1]")
        if not 1 <= self.k <= self.n or self.cooldown < 0:
            raise ValueError(f"need 1 <= k <= n and cooldown >= 0, got {self}")

    def describe(self) -> str:
        smoothing = {
            "none": "no smoothing",
            "mean": f"rolling mean of {self.window}",
            "median": f"rolling median of {self.window}",
            "ewma": f"EWMA alpha {self.alpha:g}",
        }[self.smoothing]
        return f"{smoothing}, {self.k} of {self.n} above the threshold, cool-down {self.cooldown}"


def smooth(scores: np.ndarray, rule: AlertRule) -> np.ndarray:
    """The rule's smoothing over one stream's scores, in time order (a young stream is
    summarised over the scores it has, as the service does).

    >>> smooth(np.array([1.0, 5.0, 1.0, 1.0]), AlertRule(smoothing="median")).tolist()
    [1.0, 3.0, 1.0, 1.0]
    """
    x = np.asarray(scores, dtype=np.float64)
    if rule.smoothing == "none" or x.size == 0:
        return x.copy()
    if rule.smoothing == "ewma":
        out = np.empty_like(x)
        value = x[0]
        for i, score in enumerate(x.tolist()):
            value = score if i == 0 else rule.alpha * score + (1 - rule.alpha) * value
            out[i] = value
        return out
    young = min(x.size, rule.window - 1)
    reduce = np.mean if rule.smoothing == "mean" else np.median
    head = [float(reduce(x[: i + 1])) for i in range(young)]
    if x.size < rule.window:
        return np.array(head)
    tail = np.asarray(reduce(sliding_window_view(x, rule.window), axis=1), dtype=np.float64)
    return np.concatenate([np.array(head, dtype=np.float64), tail])


def alerting(normalised: np.ndarray, rule: AlertRule) -> np.ndarray:
    """Whether the stream is in alert at each reading, from scores divided by the threshold.

    >>> alerting(np.array([1.5, 0.2, 1.4, 0.1, 0.1, 0.1]), AlertRule("none", k=2, n=3,
    ...     cooldown=1)).tolist()
    [False, False, True, False, False, False]
    """
    high = smooth(normalised, rule) > 1.0
    state = np.zeros(high.size, dtype=bool)
    recent: list[bool] = []
    count, alerting_now, left = 0, False, 0
    for i, above in enumerate(high.tolist()):
        recent.append(above)
        count += above
        if len(recent) > rule.n:
            count -= recent.pop(0)
        if alerting_now:
            if count < rule.k:
                alerting_now, left = False, rule.cooldown
        elif left > 0:
            left -= 1
        if not alerting_now and left <= 0 and count >= rule.k:
            alerting_now = True
        state[i] = alerting_now
    return state


def alert_starts(normalised: np.ndarray, rule: AlertRule) -> np.ndarray:
    """Indices of the readings where an alert starts, from scores divided by the threshold.

    >>> alert_starts(np.array([1.5, 0.2, 1.4, 0.1, 0.1, 0.1]), AlertRule("none", k=2, n=3,
    ...     cooldown=1)).tolist()
    [2]
    """
    state = alerting(normalised, rule)
    return np.flatnonzero(state & ~np.r_[False, state[:-1]]).astype(np.int64)


@dataclass(frozen=True)
class LabelledWindow:
    """A labelled event: readings ``start .. stop - 1`` of a stream's scored readings."""

    stream: str
    start: int
    stop: int
    kind: str = ""

    @property
    def length(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class StreamEvents:
    """One stream's alerts and labelled windows, on its scored readings."""

    name: str
    n_readings: int
    alerts: np.ndarray
    windows: list[LabelledWindow]
    reading_seconds: float | None = None
    """Seconds between readings (the median step), when the stream has timestamps."""
    normal_readings: int = 0
    """Readings outside every window (for false alerts per day)."""


@dataclass(frozen=True)
class EventFigures:
    """Event-level figures over streams, each beside its random-placement expectation."""

    n_windows: int
    n_alerts: int
    windows_alerted: float
    windows_alerted_random: float
    alerts_outside: float
    alerts_outside_random: float
    delays: list[int]
    """Readings from each alerted window's start to its first alert."""
    delay_random: float
    """Expected delay (readings) of the first random alert in a window that gets one."""
    false_alerts_per_day: float | None
    per_stream: dict[str, dict[str, float]] = field(default_factory=dict)
    false_alerts_per_day_random: float | None = None
    false_alerts: int = 0
    """Alerts starting outside every labelled stretch, over every stream."""
    false_alerts_random: float = math.nan
    """Expected count of those among as many alerts placed at random."""
    normal_readings: int = 0

    @property
    def false_alerts_per_10k(self) -> float:
        """Per 10,000 readings of normal operation: the rate where readings have no times."""
        return 1e4 * self.false_alerts / self.normal_readings if self.normal_readings else math.nan

    @property
    def false_alerts_per_10k_random(self) -> float:
        return (
            1e4 * self.false_alerts_random / self.normal_readings
            if self.normal_readings
            else math.nan
        )

    @property
    def median_delay(self) -> float:
        return float(np.median(self.delays)) if self.delays else math.nan

    @property
    def mean_delay(self) -> float:
        return float(np.mean(self.delays)) if self.delays else math.nan

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "windows": self.n_windows,
            "alerts": self.n_alerts,
            "windows_alerted": self.windows_alerted,
            "windows_alerted_random": self.windows_alerted_random,
            "alerts_outside_windows": self.alerts_outside,
            "alerts_outside_windows_random": self.alerts_outside_random,
            "median_delay_readings": self.median_delay,
            "mean_delay_readings": self.mean_delay,
            "mean_delay_readings_random": self.delay_random,
            "false_alerts_per_day": self.false_alerts_per_day,
            "false_alerts_per_day_random": self.false_alerts_per_day_random,
            "false_alerts": self.false_alerts,
            "false_alerts_random": self.false_alerts_random,
            "false_alerts_per_10000_normal_readings": self.false_alerts_per_10k,
            "false_alerts_per_10000_normal_readings_random": self.false_alerts_per_10k_random,
        }


def _inside(alerts: np.ndarray, windows: Sequence[LabelledWindow]) -> np.ndarray:
    inside = np.zeros(alerts.size, dtype=bool)
    for window in windows:
        inside |= (alerts >= window.start) & (alerts < window.stop)
    return inside


def random_window_hit(n_readings: int, length: int, n_alerts: int) -> float:
    """Chance that at least one of ``n_alerts`` uniform random alerts lands in a window of
    ``length`` of ``n_readings`` readings.

    >>> round(random_window_hit(100, 10, 1), 12)
    0.1
    """
    if n_readings <= 0:
        return math.nan
    return 1.0 - (1.0 - length / n_readings) ** n_alerts


def random_delay(n_readings: int, length: int, n_alerts: int) -> float:
    """Expected readings from a window's start to the first of ``n_alerts`` uniform random
    alerts inside it, given one lands there (NaN when none can).

    >>> round(random_delay(10**6, 11, 1), 6)  # one alert: uniform over the window
    5.0
    """
    hit = random_window_hit(n_readings, length, n_alerts)
    if not hit > 0:
        return math.nan
    miss_all = (1.0 - length / n_readings) ** n_alerts
    d = np.arange(1, length)
    beyond = (1.0 - d / n_readings) ** n_alerts - miss_all  # P(delay >= d, window hit)
    return float(beyond.sum() / hit)


def event_figures(streams: Sequence[StreamEvents]) -> EventFigures:
    """Share of labelled windows with an alert inside, share of alerts starting outside
    every window, detection delays and false alerts per day of normal operation, each beside
    the random baseline with the same number of alerts per stream."""
    n_windows = sum(len(s.windows) for s in streams)
    n_alerts = sum(s.alerts.size for s in streams)
    hit = 0
    hit_random = 0.0
    outside = 0
    outside_random = 0.0
    delays: list[int] = []
    delay_random: list[tuple[float, float]] = []  # (weight, expected delay)
    false_alerts = 0
    timed_random = 0.0
    normal_days = 0.0
    per_stream: dict[str, dict[str, float]] = {}
    for stream in streams:
        inside = _inside(stream.alerts, stream.windows)
        m = stream.alerts.size
        covered = sum(w.length for w in stream.windows)
        stream_hits = 0
        for window in stream.windows:
            mine = stream.alerts[(stream.alerts >= window.start) & (stream.alerts < window.stop)]
            if mine.size:
                stream_hits += 1
                delays.append(int(mine.min() - window.start))
            chance = random_window_hit(stream.n_readings, window.length, m)
            hit_random += chance
            if chance > 0:
                delay_random.append((chance, random_delay(stream.n_readings, window.length, m)))
        hit += stream_hits
        outside += int(np.sum(~inside))
        chance_outside = m * (1.0 - covered / stream.n_readings) if stream.n_readings else 0.0
        outside_random += chance_outside
        if stream.reading_seconds is not None:
            false_alerts += int(np.sum(~inside))
            timed_random += chance_outside
            normal_days += stream.normal_readings * stream.reading_seconds / 86_400
        per_stream[stream.name] = {
            "windows": len(stream.windows),
            "windows_alerted": stream_hits,
            "alerts": m,
            "alerts_outside": int(np.sum(~inside)),
        }
    weight = sum(w for w, _ in delay_random)
    timed = any(s.reading_seconds is not None for s in streams)
    return EventFigures(
        n_windows=n_windows,
        n_alerts=n_alerts,
        windows_alerted=hit / n_windows if n_windows else math.nan,
        windows_alerted_random=hit_random / n_windows if n_windows else math.nan,
        alerts_outside=outside / n_alerts if n_alerts else math.nan,
        alerts_outside_random=outside_random / n_alerts if n_alerts else math.nan,
        delays=delays,
        delay_random=sum(w * d for w, d in delay_random) / weight if weight else math.nan,
        false_alerts_per_day=false_alerts / normal_days if timed and normal_days else None,
        false_alerts_per_day_random=timed_random / normal_days if timed and normal_days else None,
        per_stream=per_stream,
        false_alerts=outside,
        false_alerts_random=outside_random,
        normal_readings=sum(s.normal_readings for s in streams),
    )


def windows_from_labels(
    stream: str, labels: np.ndarray, kinds: np.ndarray | None = None
) -> list[LabelledWindow]:
    """Runs of consecutive anomalous readings as windows (a labelled file's events), each
    of the kind of its first reading when ``kinds`` are given.

    >>> [(w.start, w.stop) for w in windows_from_labels("s", np.array([0, 1, 1, 0, 1]))]
    [(1, 3), (4, 5)]
    """
    y = np.r_[False, np.asarray(labels, dtype=bool), False].astype(np.int8)
    edges = np.diff(y)
    starts = np.flatnonzero(edges == 1)
    stops = np.flatnonzero(edges == -1)
    return [
        LabelledWindow(stream, int(a), int(b), "" if kinds is None else str(kinds[a]))
        for a, b in zip(starts, stops, strict=True)
    ]


def first_alert_delay(window: LabelledWindow, alerts: np.ndarray) -> int | None:
    """Readings from the window's start to its first alert (None: no alert inside)."""
    inside = alerts[(alerts >= window.start) & (alerts < window.stop)]
    return int(inside.min() - window.start) if inside.size else None


def median_step_seconds(timestamps: np.ndarray | None) -> float | None:
    """The median time between readings, in seconds (None without usable timestamps).
    Numbers are read as seconds, the unit docs/training.md gives a numeric time column (Unix
    time, seconds since the start)."""
    if timestamps is None or len(timestamps) < 2:
        return None
    stamps = np.asarray(timestamps)
    if np.issubdtype(stamps.dtype, np.datetime64):
        steps = np.diff(stamps).astype("timedelta64[ns]").astype(np.float64) / 1e9
    else:
        steps = np.diff(stamps.astype(np.float64))
    step = float(np.median(steps))
    return step if step > 0 else None
