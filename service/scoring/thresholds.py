"""The thresholds the decision reads: read on every request, written by one owner.

The board belongs to :class:`service.calibration.keeper.ThresholdKeeper`, which creates it
and is the only caller of :meth:`ThresholdBoard.set` (after committing the version to the
store); everything else reads it.

Each model's threshold is an immutable snapshot swapped in one assignment, so a request
sees either the old or the new version, never a mix of value and version.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ThresholdSnapshot:
    """A threshold in force: its value, its version number and the training baseline."""

    value: float
    version: int
    baseline: float

    @property
    def drift_ratio(self) -> float:
        return self.value / self.baseline - 1.0


class ThresholdBoard:
    """Current threshold per model name."""

    def __init__(self) -> None:
        self._current: dict[str, ThresholdSnapshot] = {}

    def get(self, model: str) -> ThresholdSnapshot:
        return self._current[model]

    def set(self, model: str, snapshot: ThresholdSnapshot) -> None:
        """The threshold keeper's alone."""
        if not snapshot.value > 0:
            raise ValueError(f"threshold for {model} must be positive, got {snapshot.value}")
        self._current[model] = snapshot

    def models(self) -> list[str]:
        return list(self._current)

    def __contains__(self, model: object) -> bool:
        return model in self._current
