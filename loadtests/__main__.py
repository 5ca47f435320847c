"""``python -m loadtests run``: start the servers, run the scenarios, print the table.

Exit status: 0 when every target is met, 1 when one is missed, 2 when the run failed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadtests.generators import GeneratorError
from loadtests.machine import machine_facts
from loadtests.results import table, write_json
from loadtests.runner import run
from loadtests.scenarios import SCENARIOS, RunConfig
from loadtests.servers import REPO_ROOT, ServerError

DEFAULT_OUTPUT = REPO_ROOT / "reports" / "loadtest.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m loadtests", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="list the scenarios and their targets")
    defaults = RunConfig()
    runp = commands.add_parser("run", help="run scenarios and print the table")
    runp.add_argument(
        "--scenario",
        action="append",
        choices=list(SCENARIOS),
        help="run only these (repeatable); default: all, in the listed order",
    )
    runp.add_argument(
        "--duration",
        type=float,
        help="seconds of every phase but the soak (default: "
        f"{defaults.saturation_s:g} saturation, {defaults.fixed_rate_s:g} at 300 req/s, "
        f"{defaults.batch_rate_s:g} at 10 batches/s)",
    )
    runp.add_argument(
        "--soak-duration", type=float, default=defaults.soak_s, help="seconds of the soak"
    )
    runp.add_argument(
        "--rounds",
        type=int,
        default=defaults.rounds,
        help="alternating rounds of the empty and single scenarios (median reported)",
    )
    runp.add_argument(
        "--warmup", type=float, default=defaults.warmup_s, help="seconds of unmeasured load first"
    )
    runp.add_argument("--models-dir", type=Path, default=defaults.models_dir)
    runp.add_argument("--model", help="model name, when the models dir holds several")
    runp.add_argument("--json-batch", type=int, default=defaults.json_batch)
    runp.add_argument("--binary-batch", type=int, default=defaults.binary_batch)
    runp.add_argument("--soak-streams", type=int, default=defaults.soak_streams)
    runp.add_argument(
        "--soak-capacity",
        type=int,
        default=defaults.soak_capacity,
        help="the soak server's stream capacity (ANOMALY_STREAM_CAPACITY)",
    )
    runp.add_argument("--no-pin", action="store_true", help="don't pin servers and clients")
    runp.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="where the JSON results go"
    )
    return parser


def config_from(args: argparse.Namespace) -> RunConfig:
    config = RunConfig(
        scenarios=tuple(args.scenario or SCENARIOS),
        soak_s=args.soak_duration,
        warmup_s=args.warmup,
        rounds=args.rounds,
        models_dir=args.models_dir.resolve(),
        model=args.model,
        pin=not args.no_pin,
        json_batch=args.json_batch,
        binary_batch=args.binary_batch,
        soak_streams=args.soak_streams,
        soak_capacity=args.soak_capacity,
    )
    return config.with_duration(args.duration) if args.duration is not None else config


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "list":
        config = RunConfig()
        for scenario in SCENARIOS.values():
            print(
                f"{scenario.name:18} {scenario.target_text(config.targets):24} "
                f"{scenario.description}"
            )
        return 0
    config = config_from(args)
    before = machine_facts()

    def log(message: str) -> None:
        print(f"-- {message}", file=sys.stderr, flush=True)

    try:
        results = run(config, log=log)
    except (ServerError, GeneratorError, AssertionError, FileNotFoundError, ValueError) as exc:
        print(f"load test failed: {exc}", file=sys.stderr)
        return 2
    after = machine_facts()
    meta = {
        **before,
        "load_average_after": after["load_average"],
        "pinning": config.pin,
        "config": {
            "scenarios": list(config.scenarios),
            "saturation_s": config.saturation_s,
            "fixed_rate_s": config.fixed_rate_s,
            "batch_rate_s": config.batch_rate_s,
            "soak_s": config.soak_s,
            "rounds": config.rounds,
            "json_batch": config.json_batch,
            "binary_batch": config.binary_batch,
            "soak_streams": config.soak_streams,
            "soak_capacity": config.soak_capacity,
        },
    }
    print(
        f"{before['cpu']}, {before['cores']} cores; load average "
        f"{_load(before['load_average'])} before, {_load(after['load_average'])} after"
    )
    print(table(results))
    write_json(args.output, results, meta)
    print(f"results: {_shown(args.output)}")
    return 0 if all(r.passed is not False for r in results) else 1


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _load(values: tuple[float, float, float]) -> str:
    return " ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    raise SystemExit(main())
