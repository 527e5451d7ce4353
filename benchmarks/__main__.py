"""`python -m benchmarks [--tiny] [--only NAME] [--size 100MB,1GB] [--repeat N]`.

Runs every `benchmarks/bench_*.py` module (or the one named by --only), prints a table per
benchmark and, for full runs, appends a markdown section to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import time
from pathlib import Path
from types import ModuleType

from benchmarks.app_database import WORK_DIR, parse_size
from benchmarks.harness import BenchmarkError, BenchOptions, BenchReport
from benchmarks.report import (
    append_results,
    load_average,
    machine_lines,
    render_markdown,
    render_text,
)

PACKAGE_DIR = Path(__file__).resolve().parent
RESULTS_PATH = PACKAGE_DIR / "RESULTS.md"
FULL_SIZES = "100MB,1GB"
TINY_SIZE = "4MB"
FULL_REPEAT = 3


def discover() -> dict[str, ModuleType]:
    """Every benchmark module, by its NAME, in file-name order."""
    modules = {}
    for path in sorted(PACKAGE_DIR.glob("bench_*.py")):
        module = importlib.import_module(f"benchmarks.{path.stem}")
        modules[module.NAME] = module
    return modules


def parse_args(argv: list[str] | None, names: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--tiny", action="store_true", help=f"one run at {TINY_SIZE} (CI)")
    parser.add_argument("--only", choices=names, help="run only this benchmark")
    parser.add_argument("--size", help=f"comma-separated sizes (default {FULL_SIZES})")
    parser.add_argument("--repeat", type=int, help=f"runs per contender (default {FULL_REPEAT})")
    parser.add_argument(
        "--record",
        action=argparse.BooleanOptionalAction,
        default=None,
        help=f"append to {RESULTS_PATH.name} (default: yes, except with --tiny)",
    )
    parser.add_argument("--work-dir", type=Path, default=WORK_DIR, help="cache and scratch")
    args = parser.parse_args(argv)
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    try:
        args.sizes = [
            parse_size(text)
            for text in (args.size or (TINY_SIZE if args.tiny else FULL_SIZES)).split(",")
        ]
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: list[str] | None = None) -> int:
    modules = discover()
    args = parse_args(argv, sorted(modules))
    options = BenchOptions(
        sizes=args.sizes,
        repeat=args.repeat or (1 if args.tiny else FULL_REPEAT),
        tiny=args.tiny,
        work_dir=args.work_dir,
    )
    machine = machine_lines()
    selected = [modules[args.only]] if args.only else list(modules.values())
    reports: list[BenchReport] = []
    for module in selected:
        print(f"running {module.NAME}: {module.DESCRIPTION}", file=sys.stderr, flush=True)
        started = time.perf_counter()
        try:
            reports.append(module.run(options))
        except BenchmarkError as exc:
            print(f"benchmark {module.NAME}: {exc}", file=sys.stderr)
            return 1
        print(f"finished {module.NAME} in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    machine.append(f"load average at the end: {load_average()}")
    print(render_text(reports, machine))
    if args.record if args.record is not None else not args.tiny:
        command = shlex.join(
            ["python", "-m", "benchmarks", *(argv if argv is not None else sys.argv[1:])]
        )
        append_results(RESULTS_PATH, render_markdown(reports, machine, command))
        print(f"recorded in {RESULTS_PATH}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
