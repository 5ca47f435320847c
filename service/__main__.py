"""``python -m service [--host H] [--port P] [--models-dir D]``: one uvicorn worker.

Scale with replicas, not workers: stream state and recent readings live in the process.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Any

import uvicorn
from pydantic import ValidationError

from service.app import create_app
from service.environment import PREFIX, UnknownVariables, check_variables
from service.errors import validation_problems
from service.security import KeyConfigurationError
from service.settings import Settings


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m service",
        description="Serve real-time anomaly scores (settings also come from ANOMALY_* variables).",
    )
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8000)")
    parser.add_argument("--models-dir", type=Path, help="folder of <name>/<version>/ artifacts")
    parser.add_argument(
        "--access-log", action="store_true", default=None, help="log every request (slower)"
    )
    parser.add_argument("--log-level", default="info", help="uvicorn log level (default info)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "host": args.host,
            "port": args.port,
            "models_dir": args.models_dir,
            "access_log": args.access_log,
        }.items()
        if value is not None
    }
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = Settings(**overrides)
        check_variables(settings, os.environ)
        app = create_app(settings)
    except (ValidationError, KeyConfigurationError, UnknownVariables) as exc:
        # A setting to mend, not a fault in the code: its reason, without a traceback
        # that buries it (argparse's status for a usage error).
        reason = (
            validation_problems(exc, whole="settings", name=lambda where: PREFIX + where.upper())
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        print(f"python -m service: cannot start: {reason}", file=sys.stderr)
        raise SystemExit(2) from None
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        workers=1,
        access_log=settings.access_log,
        log_level=args.log_level,
        server_header=False,
    )


if __name__ == "__main__":
    main()
