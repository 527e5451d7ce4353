"""`python -m benchmarks.backup_costs DB`: the CPU seconds of each step a backup could take
over the database's bytes, each measured alone in this process, printed as JSON.

The candidates of issue 15: the SHA-256 the metadata needs, the part checksums S3 can
verify (SHA-256, CRC32 by zlib, CRC32C by the crc32c package), our one
pass (SHA-256 and the part checksum over each chunk read once), and the database checks
(`quick_check` both ways the backup runs it, `integrity_check` as the drill does, row counts
through the smallest index, by table scans where the backup falls back to SQL, and from
the page census its one pass takes).
"""

from __future__ import annotations

import hashlib
import json
import resource
import sqlite3
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

from crc32c import crc32c

from opsd.database import connect, table_root_pages, table_row_counts
from tasks.backups import prefetched_check
from tasks.backups.checksums import path_digests
from tasks.backups.row_census import RowCensus
from tasks.backups.snapshot import map_into_memory, quick_check_errors, scanned_row_counts

_CHUNK = 4 << 20


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _over_chunks(path: Path, update: Callable[[memoryview], object]) -> Callable[[], None]:
    def run() -> None:
        buffer = memoryview(bytearray(_CHUNK))
        with path.open("rb", buffering=0) as handle:
            while count := handle.readinto(buffer):
                update(buffer[:count])

    return run


def _crc(function: Callable[[memoryview, int], int]) -> Callable[[memoryview], None]:
    state = [0]

    def update(chunk: memoryview) -> None:
        state[0] = function(chunk, state[0])

    return update


def _database(step: Callable[[sqlite3.Connection], object], path: Path) -> Callable[[], None]:
    def run() -> None:
        conn = connect(path, readonly=True)
        try:
            step(conn)
        finally:
            conn.close()

    return run


def _prefetched_quick_check(path: Path) -> None:
    conn = prefetched_check.open_for_check(path)
    try:
        prefetched_check.quick_check_errors(conn)
    finally:
        conn.close()


def _census_row_counts(path: Path) -> None:
    census, read = RowCensus(), [0]

    def feed(chunk: memoryview) -> None:
        census.feed(read[0], chunk)
        read[0] += len(chunk)

    _over_chunks(path, feed)()
    conn = connect(path, readonly=True)
    try:
        roots = table_root_pages(conn)
    finally:
        conn.close()
    if census.row_counts(roots) is None:
        raise RuntimeError(f"{path}: the page census could not count the rows")


def steps(path: Path) -> dict[str, Callable[[], None]]:
    found: dict[str, Callable[[], None]] = {
        "read only (4 MiB chunks)": _over_chunks(path, lambda chunk: None),
        "SHA-256": _over_chunks(path, hashlib.sha256().update),
        "CRC32 (zlib)": _over_chunks(path, _crc(zlib.crc32)),
        "CRC32C (crc32c, as the backup's parts carry it)": _over_chunks(path, _crc(crc32c)),
    }
    found["ours: one pass, SHA-256 + part checksums + page census"] = lambda: (
        path_digests(path, 8 << 20) and None
    )
    found["PRAGMA quick_check, mapped (as the backup checks a snapshot that fits in memory)"] = (
        _database(lambda conn: (map_into_memory(conn, path), quick_check_errors(conn)), path)
    )
    found["PRAGMA quick_check, prefetching VFS (as the backup checks a larger one)"] = lambda: (
        _prefetched_quick_check(path)
    )
    found["PRAGMA integrity_check (the drill)"] = _database(
        lambda conn: conn.execute("PRAGMA integrity_check").fetchall(), path
    )
    found["row counts by the smallest index"] = _database(table_row_counts, path)
    found["row counts by table scans, mapped (the backup's fallback)"] = _database(
        lambda conn: (map_into_memory(conn, path), scanned_row_counts(conn)), path
    )
    found["row counts from the page census, read included (as the backup takes them)"] = lambda: (
        _census_row_counts(path)
    )
    return found


def main(argv: list[str]) -> int:
    path = Path(argv[0])
    figures = {}
    for name, step in steps(path).items():
        before = _cpu_s()
        step()
        figures[name] = _cpu_s() - before
    json.dump({"bytes": path.stat().st_size, "cpu_s": figures}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
