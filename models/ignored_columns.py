"""``--ignore-columns``: CSV columns that are neither sensors, the time index nor ground truth
(a second clock, a machine state in words), left out of every file ``train`` and ``evaluate``
read. Nothing of them is recorded: a model's sensors are the columns that remain, and
``evaluate`` lines files up with them by name."""

from __future__ import annotations

import argparse
import shlex
from collections.abc import Iterable, Sequence
from pathlib import Path

OPTION = "--ignore-columns"


def add_option(group: argparse._ArgumentGroup, files: str) -> None:
    """The option, on ``train``'s or ``evaluate``'s data group; ``files`` says which files it
    applies to, as that command names them."""
    group.add_argument(
        OPTION,
        nargs="+",
        action="extend",
        metavar="NAME",
        help=f"CSV columns to leave out of {files}: neither sensors, the time index nor labels "
        "(header names, case-insensitive, separated by spaces; repeatable)",
    )


def ignore_hint(names: Iterable[str]) -> str:
    """The option that leaves ``names`` out, quoted as a shell needs it.

    >>> ignore_hint(["state", "Time (UTC)"])
    "--ignore-columns state 'Time (UTC)'"
    """
    return " ".join([OPTION, *(shlex.quote(name) for name in names)])


def unfound(names: Sequence[str] | None, read: Sequence[tuple[Path, Iterable[str]]]) -> str | None:
    """Why names given are wrong, or None, from each file read and the columns left out of it:
    a name no file has is a typo, and the column meant would otherwise stay in as a sensor. A
    name only some files have is fine (a calibration file need not carry the training file's
    extra columns)."""
    if not names:
        return None
    found = {name.lower() for _, ignored in read for name in ignored}
    missing = [name for name in dict.fromkeys(names) if name.lower() not in found]
    if not missing:
        return None
    files = " or ".join(str(path) for path, _ in read) or "no file"
    headerless = [str(path) for path, _ in read if path.suffix.lower() != ".csv"]
    reason = f"{OPTION}: no column {', '.join(repr(name) for name in missing)} in {files}"
    if any("," in name for name in missing):
        reason += f" (names are separated by spaces: {OPTION} a b)"
    if headerless:
        reason += f"; {', '.join(headerless)}: no header row names the columns"
    return reason
