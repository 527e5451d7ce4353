"""App databases of a chosen size for the benchmarks, in rollback-journal mode.

The schema is the one the app writes (see `create_app_database` in tests/conftest.py):
`drawings` and `analyses` with realistic values and the indexes the app queries by.
Rows go in through `executemany` in large transactions with the journal off; the finished
file is switched to journal_mode=DELETE like the production database. Files are cached by
size under `benchmarks/work/`, so a second run reuses them.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

WORK_DIR = Path(__file__).resolve().parent / "work"
BATCH_ROWS = 50_000
# A drawing plus its analysis, indexes included, takes about 500 bytes of the file.
_BYTES_PER_ROW_PAIR = 500
_GENERATOR_VERSION = 1

SCHEMA = """
CREATE TABLE drawings (
    id INTEGER PRIMARY KEY, filename TEXT, content_type TEXT, size_bytes INTEGER,
    sha256 TEXT, age_years INTEGER, subject TEXT, storage_key TEXT, created_at TEXT);
CREATE TABLE analyses (
    id INTEGER PRIMARY KEY, drawing_id INTEGER REFERENCES drawings(id),
    created_at TEXT, model_version TEXT, age_group TEXT, anomaly_score REAL,
    threshold REAL, is_anomaly INTEGER, normalised_score REAL, processing_time_ms REAL);
CREATE TABLE alembic_version (version_num TEXT PRIMARY KEY);
CREATE INDEX ix_drawings_created_at ON drawings (created_at);
CREATE UNIQUE INDEX ix_drawings_sha256 ON drawings (sha256);
CREATE INDEX ix_analyses_drawing_id ON analyses (drawing_id);
CREATE INDEX ix_analyses_created_at ON analyses (created_at);
CREATE INDEX ix_analyses_age_group_anomaly ON analyses (age_group, is_anomaly);
INSERT INTO alembic_version VALUES ('0001_initial');
PRAGMA user_version = 1;
"""

_SUBJECTS = ("house", "family", "tree", "person", "animal", "free drawing", "self portrait")
_CONTENT_TYPES = ("image/png", "image/png", "image/jpeg")
_AGE_GROUPS = {age: f"{age - age % 2}-{age - age % 2 + 1}" for age in range(2, 19)}
_THRESHOLDS = {
    group: 0.82 + 0.01 * index for index, group in enumerate(sorted(set(_AGE_GROUPS.values())))
}
_MODEL_VERSIONS = ("vit-b16-2026.09", "vit-b16-2026.10", "vit-b16-2026.11")
_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def parse_size(text: str) -> int:
    """'100MB', '1GB', '4MiB', '500000' → bytes (decimal units; MiB/GiB binary)."""
    units = {"KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
    cleaned = text.strip().upper().replace(" ", "")
    suffix = next((name for name in units if cleaned.endswith(name)), "B")
    number, factor = cleaned.removesuffix(suffix), units.get(suffix, 1)
    try:
        value = float(number)
    except ValueError:
        raise ValueError(f"size {text!r}: expected a number with KB, MB, GB, MiB or GiB") from None
    if value <= 0:
        raise ValueError(f"size {text!r}: must be positive")
    return int(value * factor)


def format_size(size_bytes: int) -> str:
    for unit, factor in (("GB", 1000**3), ("MB", 1000**2), ("KB", 1000)):
        if size_bytes >= factor:
            return f"{size_bytes / factor:.3g}{unit}"
    return f"{size_bytes}B"


def app_database(size_bytes: int, work_dir: Path = WORK_DIR, seed: int = 7) -> Path:
    """The cached app database of about `size_bytes` (at least that), generated if missing."""
    work_dir.mkdir(parents=True, exist_ok=True)
    path = work_dir / f"app-{size_bytes}-v{_GENERATOR_VERSION}-s{seed}.db"
    if path.exists():
        return path
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    generate_app_database(partial, size_bytes, seed)
    partial.rename(path)
    return path


def generate_app_database(path: Path, size_bytes: int, seed: int = 7) -> int:
    """Fill a new file at `path` until it holds at least `size_bytes`; returns the row pairs."""
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")
        conn.executescript(SCHEMA)
        written = 0
        while (missing := size_bytes - _file_bytes(conn)) > 0:
            batch = max(1_000, min(BATCH_ROWS, missing // _BYTES_PER_ROW_PAIR))
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO drawings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _drawing_rows(rng, written + 1, batch),
            )
            conn.executemany(
                "INSERT INTO analyses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _analysis_rows(rng, written + 1, batch),
            )
            conn.execute("COMMIT")
            written += batch
        conn.execute("PRAGMA journal_mode = DELETE")
        conn.execute("PRAGMA synchronous = FULL")
    finally:
        conn.close()
    return written


def _file_bytes(conn: sqlite3.Connection) -> int:
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    return int(pages) * int(page_size)


def _stamp(row_id: int) -> str:
    """Timestamps that grow with the id, about one upload a minute, like a busy service."""
    return (_EPOCH + timedelta(seconds=row_id * 61)).isoformat(timespec="seconds")


def _drawing_rows(rng: random.Random, first_id: int, count: int) -> Iterator[tuple[object, ...]]:
    for row_id in range(first_id, first_id + count):
        created = _stamp(row_id)
        content_type = rng.choice(_CONTENT_TYPES)
        extension = "png" if content_type == "image/png" else "jpg"
        yield (
            row_id,
            f"IMG_{created[:10].replace('-', '')}_{rng.randrange(10**6):06d}.{extension}",
            content_type,
            rng.randint(18_000, 4_800_000),
            rng.getrandbits(256).to_bytes(32, "big").hex(),
            rng.randint(2, 18),
            rng.choice(_SUBJECTS),
            f"drawings/{created[:10].replace('-', '/')}/{rng.getrandbits(128):032x}.{extension}",
            created,
        )


def _analysis_rows(rng: random.Random, first_id: int, count: int) -> Iterator[tuple[object, ...]]:
    for row_id in range(first_id, first_id + count):
        age_group = _AGE_GROUPS[rng.randint(2, 18)]
        threshold = _THRESHOLDS[age_group]
        score = rng.betavariate(2, 5)
        yield (
            row_id,
            row_id,
            _stamp(row_id),
            rng.choice(_MODEL_VERSIONS),
            age_group,
            round(score, 6),
            threshold,
            int(score > threshold),
            round(score / threshold, 6),
            round(rng.lognormvariate(4.6, 0.35), 2),
        )


def main() -> None:
    import sys

    for text in sys.argv[1:] or ["100MB"]:
        started = time.perf_counter()
        path = app_database(parse_size(text))
        print(f"{path} {path.stat().st_size} bytes in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
