"""What the soak judges: when its bounded state is full, and the server's memory from then on."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from loadtests.scenarios import RunConfig
from service.settings import Settings


def soak_fill_readings(config: RunConfig) -> int:
    """Readings after which every bounded structure is full: each stream seen once (so the
    stream state is at capacity) and the recent-readings store at its maximum."""
    recent = Settings.model_fields["recent_max_readings"].default
    return max(config.soak_streams, int(recent))


def rss_summary(
    samples: Sequence[tuple[float, int, float]], warmup_s: float, fill_readings: float
) -> dict[str, Any]:
    """RSS against the first sample taken once warm-up is over and the bounded state is full
    (or, if it never filled, once warm-up is over: then ``filled`` is false)."""
    mb = 1024 * 1024
    warm = [s for s in samples if s[0] >= warmup_s] or [samples[-1]]
    full = [s for s in warm if s[2] >= fill_readings]
    after = full or warm
    reference = after[0][1]
    deviations = [rss / reference - 1.0 for _, rss, _ in after]
    times = [t for t, _, _ in after]
    slope = 0.0
    if len(after) >= 3 and times[-1] > times[0]:
        mean_t = statistics.fmean(times)
        mean_r = statistics.fmean(rss for _, rss, _ in after)
        num = sum((t - mean_t) * (rss - mean_r) for t, rss, _ in after)
        den = sum((t - mean_t) ** 2 for t in times)
        slope = num / den * 60 / mb
    return {
        "start_mb": samples[0][1] / mb,
        "reference_mb": reference / mb,
        "reference_s": after[0][0],
        "filled": bool(full),
        "fill_readings": fill_readings,
        "min_mb": min(rss for _, rss, _ in after) / mb,
        "max_mb": max(rss for _, rss, _ in after) / mb,
        "end_mb": samples[-1][1] / mb,
        "max_deviation": max(deviations, key=abs),
        "slope_mb_per_min": slope,
        "warmup_s": warmup_s,
        "samples": [(round(t, 2), round(rss / mb, 2), scored) for t, rss, scored in samples],
    }
