"""A live writer: one small insert committed every 10 ms, timing each commit.

`python -m benchmarks.commit_writer DB OUT.json [--interval-ms 10]` prints `ready` once
connected, writes until SIGTERM, then saves the commit latencies (ms) and the failures to
OUT.json. It connects through `opsd.database.connect`, like the app, so it uses the same
journal mode and busy timeout a real writer would.
"""

from __future__ import annotations

import argparse
import json
import signal
import sqlite3
import sys
import threading
import time
from pathlib import Path
from types import FrameType

from opsd.database import connect

_INSERT = (
    "INSERT INTO analyses (public_id, drawing_id, created_at, model_version, age_group,"
    " anomaly_score, threshold, is_anomaly, normalised_score, processing_time_ms)"
    " VALUES (hex(randomblob(16)), 1, strftime('%Y-%m-%dT%H:%M:%S+00:00', 'now'),"
    " 'vit-b16-2026.11', '6-7', ?, 0.85, 0, ?, 104.5)"
)


def write_until_stopped(
    database: Path, interval_s: float, stop: threading.Event
) -> tuple[list[float], list[str]]:
    """Commit one insert per interval until `stop`; returns (latencies in ms, failures)."""
    conn = connect(database)
    latencies: list[float] = []
    failures: list[str] = []
    print("ready", flush=True)
    next_due = time.perf_counter()
    try:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                conn.execute(_INSERT, (0.25, 0.29))
            except sqlite3.Error as exc:
                failures.append(str(exc))
            else:
                latencies.append((time.perf_counter() - started) * 1000)
            next_due = max(next_due + interval_s, time.perf_counter())
            stop.wait(max(0.0, next_due - time.perf_counter()))
    finally:
        conn.close()
    return latencies, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("database", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--interval-ms", type=float, default=10.0)
    args = parser.parse_args(argv)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    latencies, failures = write_until_stopped(args.database, args.interval_ms / 1000, stop)
    args.out.write_text(json.dumps({"latencies_ms": latencies, "failures": failures}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
