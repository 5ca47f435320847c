"""The threshold a person last chose, from which automatic steps are capped.

Recalibration applies a step on its own only within ``recalibration_max_change`` of the
threshold in force *and* of this anchor, so that steps each under the cap cannot add up to a
move nobody approved. The anchor is the newest version whose source a person chose
(:data:`~service.calibration.records.CHOSEN_BY_A_PERSON`), with one exception: a rollback to
a value recalibration set keeps the anchor that value was capped from, recorded with the
rollback, since rolling back to "the last good version" of a poisoning must not bless the
poisoning's first steps as a new starting point.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from service.calibration.records import CHOSEN_BY_A_PERSON, ThresholdVersion


@dataclass(frozen=True, slots=True)
class Anchor:
    """The threshold automatic steps may wander at most the cap away from."""

    value: float
    version: int

    def as_statistics(self) -> dict[str, Any]:
        """How a run or a rollback records it."""
        return {"anchor": self.value, "anchor_version": self.version}


def anchor_of(chosen: ThresholdVersion) -> Anchor:
    """The anchor a chosen version sets: its own value, or the one its rollback recorded.

    >>> from service.calibration.records import ThresholdVersion
    >>> def v(version, value, source, **stats):
    ...     return ThresholdVersion("m", version, "1", value, 1.0, source, "", "", stats, 0.0)
    >>> anchor_of(v(3, 1.2, "manual"))
    Anchor(value=1.2, version=3)
    >>> anchor_of(v(5, 1.1, "rollback", anchor=1.0, anchor_version=1))
    Anchor(value=1.0, version=1)
    """
    if chosen.source == "rollback" and "anchor" in chosen.statistics:
        return Anchor(float(chosen.statistics["anchor"]), int(chosen.statistics["anchor_version"]))
    return Anchor(chosen.value, chosen.version)


def rollback_anchor(
    target: ThresholdVersion, chosen_before: ThresholdVersion | None
) -> Anchor | None:
    """The anchor a rollback to ``target`` keeps, to record with it; None where the rollback's
    own value is the anchor (``target`` was a person's choice). ``chosen_before``: the newest
    chosen version below ``target``, whose anchor an automatic ``target`` was capped from.

    >>> from service.calibration.records import ThresholdVersion
    >>> def v(version, value, source, **stats):
    ...     return ThresholdVersion("m", version, "1", value, 1.0, source, "", "", stats, 0.0)
    >>> rollback_anchor(v(2, 1.1, "recalibration"), v(1, 1.0, "manifest"))
    Anchor(value=1.0, version=1)
    >>> rollback_anchor(v(4, 1.3, "approval"), v(1, 1.0, "manifest")) is None
    True
    >>> rollback_anchor(v(6, 1.1, "rollback", anchor=1.0, anchor_version=1), None)
    Anchor(value=1.0, version=1)
    """
    if target.source in CHOSEN_BY_A_PERSON:
        restored = anchor_of(target)
        return None if restored.version == target.version else restored
    return None if chosen_before is None else anchor_of(chosen_before)
