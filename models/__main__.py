"""``python -m models <command>``: each command lives in its own module.

A command module provides ``add_parser(subparsers)``, which adds its sub-parser and sets
``run`` as its default, and ``run(args) -> int`` (the exit status).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("models.train_command", "train, calibrate and export a model artifact"),
    "generate": (
        "models.synthetic",
        "write synthetic plant readings (optionally with labelled faults) to CSV",
    ),
    "evaluate": (
        "models.evaluate_command",
        "evaluate an artifact on normal and labelled anomalous readings",
    ),
    "benchmark": (
        "models.benchmark_command",
        "run a published real-data protocol (TEP, SKAB, NAB) with the default settings",
    ),
}
"""Command name -> (module, one-line help). A command's module, and torch with it, is
imported only when that command runs, so ``python -m models --help`` works anywhere."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command's full parser, or (``command`` given) that one's and a one-line entry
    for each of the others."""
    parser = argparse.ArgumentParser(
        prog="python -m models",
        description="Train, calibrate, export and evaluate sensor anomaly models.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        if command is None or name == command:
            importlib.import_module(module).add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    first = next((word for word in words if not word.startswith("-")), None)
    # Only the command that runs is imported; with none (--help, a typo) none is.
    command = first if first in COMMANDS else ""
    args = build_parser(command).parse_args(words)
    status: int = args.run(args)
    return status


if __name__ == "__main__":
    sys.exit(main())
