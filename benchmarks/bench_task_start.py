"""Task start: what a task run costs before it does anything, and sqlite-utils' share of it.

`python -m tasks publish-metrics` with ENABLE_METRICS=false starts, opens the ops state (which
imports sqlite-utils), records its run and exits, without AWS. It runs side by side with the
bare interpreter, each in its own process, under `-X importtime`, whose `sqlite_utils` line
gives the import's own cost in the same runs. Issue 14's budget (a task's start at most 50 ms
later than before the ops state moved to sqlite-utils) needs the old tree beside the new one:
that before/after is measured by hand and recorded in RESULTS.md.

sqlite-utils imports numpy and pandas when they are installed: the tasks image has neither,
the dev install has numpy. The "tasks image" contender hides them from the child (as absent);
the "dev install" one shows what local mode pays.
"""

from __future__ import annotations

import re
import statistics
import sys
from pathlib import Path

from benchmarks.harness import BenchOptions, BenchReport, Summary, Table, run_measured

NAME = "task-start"
DESCRIPTION = "start of a task run (publish-metrics, nothing to publish): the sqlite-utils import"

FULL_RUNS = 20
_TASK = "import runpy, sys; sys.argv[1:] = ['publish-metrics']; "
_WITHOUT_NUMPY = "sys.modules.update(numpy=None, pandas=None); "
CONTENDERS = {
    "interpreter (python -c pass)": ["-c", "pass"],
    "task, as in the tasks image (no numpy)": [
        "-c",
        _TASK + _WITHOUT_NUMPY + "runpy.run_module('tasks', run_name='__main__')",
    ],
    "task, dev install (numpy importable)": [
        "-c",
        _TASK + "runpy.run_module('tasks', run_name='__main__')",
    ],
}
_IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+(\d+) \|\s+sqlite_utils$", re.M)


def run(options: BenchOptions) -> BenchReport:
    runs = options.repeat if options.tiny else max(options.repeat, FULL_RUNS)
    work = options.work_dir / NAME
    work.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": "/usr/bin:/bin",
        "ENABLE_METRICS": "false",
        "OPS_STATE_PATH": str(work / "ops-state.db"),
        "DATABASE_PATH": str(work / "app.db"),
        "LOG_FORMAT": "json",
    }
    results: dict[str, tuple[Summary, list[float]]] = {
        name: (Summary(name, [], 0), []) for name in CONTENDERS
    }
    for attempt in range(runs):  # contenders take turns, so load hits them alike
        for index, (name, arguments) in enumerate(CONTENDERS.items()):
            done = run_measured(
                [sys.executable, "-X", "importtime", *arguments],
                env=env,
                cwd=Path(__file__).resolve().parent.parent,
                log_path=work / f"{index}-{attempt}.log",
            )
            summary, imports = results[name]
            summary.walls.append(done.wall_s)
            summary.cpus.append(done.cpu_s)
            imports += [int(us) / 1000 for us in _IMPORT_LINE.findall(done.output)]
    floor = statistics.median(results[next(iter(CONTENDERS))][0].walls)
    table = Table(
        f"task start, median of {runs} runs each",
        ["contender", "wall ms", "CPU ms", "× interpreter", "sqlite_utils import ms"],
    )
    for name, (summary, imports) in results.items():
        table.rows.append(
            [
                name,
                f"{summary.median_s * 1000:.0f}",
                f"{summary.median_cpu_s * 1000:.0f}",
                f"{summary.median_s / floor:.2f}×",
                f"{statistics.median(imports):.0f}" if imports else "–",
            ]
        )
    notes = [
        "-X importtime figures are the import's cumulative time in the same runs; on a loaded "
        "machine they grow with the load like the wall times (compare the interpreter row)."
    ]
    return BenchReport(NAME, tables=[table], notes=notes)
