"""`python -I benchmarks/measure.py OUT.json CMD...`: run CMD, record its wall time and peak RSS.

A forked child starts with its parent's peak RSS (Linux keeps the high-water mark across
fork and exec), so a contender started straight from the harness would inherit the
harness's memory. This launcher imports almost nothing; CMD's figure is
`getrusage(RUSAGE_CHILDREN).ru_maxrss`: the largest process of CMD's tree, in KiB,
never below this launcher's own few MiB.
"""

import json
import resource
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -I benchmarks/measure.py OUT.json CMD...", file=sys.stderr)
        return 2
    out, command = argv[0], argv[1:]
    started = time.perf_counter()
    try:
        returncode = subprocess.call(command)
    except OSError as exc:
        print(f"measure: cannot start {command[0]}: {exc}", file=sys.stderr)
        return 127
    wall_s = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(out, "w") as handle:
        json.dump({"wall_s": wall_s, "peak_rss_kib": peak_kib, "returncode": returncode}, handle)
    return returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
