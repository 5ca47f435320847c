"""A stream's state as bytes, so another process can carry on exactly where this one stopped.

Floats travel at full width (the smoother's float64 history, the window buffer's float32
rows), so a state restored elsewhere gives bit-for-bit the scores it would have given here.
Only what is not derived from the model and the settings is written: the smoother's kind,
window and alpha, the k-of-n rule and the window length come from the model that restores it.

>>> from service.scoring.decision import AlertDebouncer
>>> from service.scoring.smoothing import RollingMedian
>>> state = StreamState(RollingMedian(3), AlertDebouncer(2, 3, 1), window=2, n_sensors=2,
...                     model_version="1", now=5.0)
>>> _ = state.smoother.update(0.5)
>>> state.push(np.array([[1.0, 2.0]], dtype=np.float32))
>>> copy = StreamState(RollingMedian(3), AlertDebouncer(2, 3, 1), window=2, n_sensors=2,
...                    model_version="", now=0.0)
>>> restore(copy, encode(state))
>>> copy.smoother.get(), copy.filled, copy.window_buffer.tolist(), copy.model_version
(0.5, 1, [[1.0, 2.0]], '1')
"""

from __future__ import annotations

import struct

import numpy as np

from service.scoring.streams import StreamState

FORMAT = 1
# format, last seen, phase, cool-down left, filled rows, sensors, highs, smoothed, version bytes
_HEADER = struct.Struct("<BdbiIIHHH")
# After the rows, since 7 Dec 2026: the threshold the smoothed scores were divided by
# (StreamState.unit), then the artifact's fingerprint (a length byte, ASCII). At the end, so a
# service from before reads the rest as it always did (it ignores what follows the rows) and
# this one reads a blob without them.
_UNIT = struct.Struct("<d")


class StateFormatError(ValueError):
    """Bytes that are not a stream state this code wrote."""


def encode(state: StreamState) -> bytes:
    """The state's bytes (its window rows, history and alert phase)."""
    bits, left, phase = state.debouncer.snapshot()
    history = state.smoother.snapshot()
    version = state.model_version.encode()
    capacity, n_sensors = state.window_buffer.shape
    rows = state.window_buffer[capacity - state.filled :] if state.filled else None
    header = _HEADER.pack(
        FORMAT, state.last_seen, phase, left, state.filled, n_sensors,
        len(bits), len(history), len(version),
    )  # fmt: skip
    parts = [header, bytes(bytearray(bits)), np.asarray(history, dtype="<f8").tobytes(), version]
    if rows is not None:
        parts.append(np.ascontiguousarray(rows, dtype="<f4").tobytes())
    artifact = state.artifact.encode("ascii")
    parts += [_UNIT.pack(state.unit), bytes((len(artifact),)), artifact]
    return b"".join(parts)


def restore(state: StreamState, blob: bytes) -> None:
    """Load ``blob`` into ``state``, a fresh state built for the stream's model; a blob
    whose window rows do not fit that model is refused (:class:`StateFormatError`)."""
    if len(blob) < _HEADER.size:
        raise StateFormatError("stream state too short")
    fmt, last_seen, phase, left, filled, n_sensors, n_bits, n_history, n_version = (
        _HEADER.unpack_from(blob)
    )
    if fmt != FORMAT:
        raise StateFormatError(f"stream state format {fmt}, this service reads {FORMAT}")
    capacity, expected_sensors = state.window_buffer.shape
    if filled > capacity or (filled and n_sensors != expected_sensors):
        raise StateFormatError("stream state does not fit the model's window")
    at = _HEADER.size
    bits = [bool(b) for b in blob[at : at + n_bits]]
    at += n_bits
    history = np.frombuffer(blob, dtype="<f8", count=n_history, offset=at).tolist()
    at += 8 * n_history
    state.model_version = blob[at : at + n_version].decode()
    at += n_version
    if filled:
        rows = np.frombuffer(blob, dtype="<f4", count=filled * n_sensors, offset=at)
        state.window_buffer[capacity - filled :] = rows.reshape(filled, n_sensors)
        at += 4 * filled * n_sensors
    if len(blob) >= at + _UNIT.size:
        # The fresh smoother (its start) is over the threshold in force; the blob's scores
        # over the one they were divided by: bring the start there before they come back.
        (unit,) = _UNIT.unpack_from(blob, at)
        state.in_units(unit)
        at += _UNIT.size
        if len(blob) > at:
            state.artifact = blob[at + 1 : at + 1 + blob[at]].decode("ascii", errors="replace")
    # Without it (a service from before wrote it): its scores are over the threshold in
    # force, the fresh state's unit, as that service read them.
    state.filled = filled
    state.last_seen = last_seen
    state.smoother.restore(history)
    state.debouncer.restore(bits, left, phase)
