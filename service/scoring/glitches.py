"""The glitch guard (``train --glitch-guard``): a one-reading glitch is scored once, at its
own reading.

A model over a window of readings sees every reading in ``window`` consecutive inputs, so
one bad value (a transmission glitch, a sensor's single wild sample) raises ``window``
scores in a row and, smoothed, an alert. A model trained with the guard declares per-sensor
jump limits (``Manifest.glitch_limits``): a sensor's value that jumps away from both of its
raw neighbours, in the same direction, by more than its limit is, once its successor has
come, replaced in the stream's history by its neighbours' mean. The latest reading of every
window stays as it came, so a glitch is still scored where it happens; a step or a drift
never jumps back, so it is never touched.

One function decides for offline scoring (``models``) and for the service, which sees the
same numbers whatever batches a stream's readings come in: a reading is judged on its raw
neighbours only, never on a neighbour already replaced. (So two glitches two readings apart
are not removed: both are put back, but the normal reading between them, which jumps from
both, takes their level. Judging each reading on its despiked predecessor would remove both.)
The windows are formed in :mod:`service.scoring.streams`.

>>> limits = np.array([1.0], dtype=np.float32)
>>> despiked(np.array([[0.0], [5.0], [0.0], [0.5]], dtype=np.float32), limits).ravel().tolist()
[0.0, 0.0, 0.0, 0.5]
"""

from __future__ import annotations

import numpy as np


def jumps(values: np.ndarray) -> np.ndarray:
    """How far each interior reading's value (rows ``1 .. n-2`` of ``values``, readings x
    sensors) jumps away from both raw neighbours in the same direction; 0 where it does not.
    Training's largest sets the limits (models/inputs.py)."""
    up = values[1:-1] - values[:-2]
    down = values[1:-1] - values[2:]
    jumped: np.ndarray = np.where(
        np.sign(up) == np.sign(down), np.minimum(np.abs(up), np.abs(down)), 0
    )
    return jumped


def despike(values: np.ndarray, limits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``values`` (readings x sensors, time order) with each interior reading's sensor that
    jumps from both raw neighbours, in the same direction, by more than its limit replaced
    by their mean (the first and last readings are kept: a neighbour is missing), and
    whether each reading had a value replaced."""
    out = np.array(values, copy=True)
    replaced = np.zeros(len(values), dtype=bool)
    if len(values) < 3:
        return out, replaced
    hit = jumps(values) > limits
    if hit.any():
        out[1:-1] = np.where(hit, (values[:-2] + values[2:]) / 2, values[1:-1])
        replaced[1:-1] = hit.any(axis=1)
    return out, replaced


def despiked(values: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """:func:`despike`'s values alone."""
    return despike(values, limits)[0]
