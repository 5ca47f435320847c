"""A run's model inputs, and the errors a scoring module gives them.

A model over ``window`` readings scores every run of ``window`` consecutive readings; with
the glitch guard (service/scoring/glitches.py) the earlier readings of each window are the
despiked ones, as the service forms them, so an offline score is the one a stream gets.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from models.data import sliding_windows
from service.scoring.streams import guarded_windows_of


def model_inputs(values: np.ndarray, window: int, limits: np.ndarray | None) -> np.ndarray:
    """A run's model inputs ``(n - window + 1, window, n_sensors)``: its windows, despiked by
    the glitch guard when it has ``limits`` (in float32, as the service despikes them)."""
    if limits is None or window == 1 or len(values) < window:
        return sliding_windows(np.asarray(values), window)  # the last: its refusal
    values32 = np.asarray(values, dtype=np.float32)
    return guarded_windows_of(
        values32[:0], values32, window, np.asarray(limits, dtype=np.float32)
    ).windows


def score_readings(
    module: nn.Module,
    values: np.ndarray,
    window: int,
    *,
    limits: np.ndarray | None = None,
    batch_size: int = 4096,
) -> np.ndarray:
    """Per-sensor squared errors of every window of ``values``, (n - window + 1, n_sensors);
    with the glitch guard's ``limits``, the windows the service forms from them."""
    windows = model_inputs(values, window, limits)
    out = np.empty((len(windows), windows.shape[2]), dtype=np.float32)
    with torch.inference_mode():
        for start in range(0, len(windows), batch_size):
            # np.array copies: the windows are a read-only view torch must not alias.
            batch = torch.from_numpy(np.array(windows[start : start + batch_size], np.float32))
            out[start : start + len(batch)] = module(batch).numpy()
    return out


GOLDEN_SIZE = 8


def golden_windows(values: np.ndarray, window: int, size: int = GOLDEN_SIZE) -> np.ndarray:
    """``size`` evenly spaced windows of ``values`` (raw readings, float32)."""
    windows = sliding_windows(np.asarray(values, dtype=np.float32), window)
    rows = np.linspace(0, len(windows) - 1, min(size, len(windows))).round().astype(np.int64)
    return np.array(windows[rows], dtype=np.float32)
