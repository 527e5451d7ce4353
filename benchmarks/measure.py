"""`python -I benchmarks/measure.py OUT.json CMD...`: run CMD, record its wall time and peak RSS.

A forked child starts with its parent's peak RSS (Linux keeps the high-water mark across
fork and exec), so a contender started straight from the harness would inherit the
harness's memory. This launcher imports almost nothing; CMD's figure is
`getrusage(RUSAGE_CHILDREN).ru_maxrss`: the largest process of CMD's tree, in KiB,
never below this launcher's own few MiB; its CPU seconds are user + system time of the
whole tree (every waited-for descendant).

With `--cgroup DIR` (repeatable) CMD's process is moved into each of those cgroup v1
directories before it starts, so that the limits apply to CMD's tree and to nothing else.
"""

import json
import os
import resource
import subprocess
import sys
import time

USAGE = "usage: python -I benchmarks/measure.py [--cgroup DIR]... OUT.json CMD..."


def main(argv: list[str]) -> int:
    cgroups = []
    while len(argv) >= 2 and argv[0] == "--cgroup":
        cgroups.append(argv[1])
        argv = argv[2:]
    if len(argv) < 2:
        print(USAGE, file=sys.stderr)
        return 2
    out, command = argv[0], argv[1:]

    def join_cgroups() -> None:
        for directory in cgroups:
            with open(os.path.join(directory, "cgroup.procs"), "w") as procs:
                procs.write(str(os.getpid()))

    started = time.perf_counter()
    try:
        returncode = subprocess.call(command, preexec_fn=join_cgroups if cgroups else None)
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"measure: cannot start {command[0]}: {exc}", file=sys.stderr)
        return 127
    wall_s = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = {
        "wall_s": wall_s,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_kib": usage.ru_maxrss,
        "returncode": returncode,
    }
    with open(out, "w") as handle:
        json.dump(figures, handle)
    return returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
