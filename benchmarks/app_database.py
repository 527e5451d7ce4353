"""App databases of a chosen size for the benchmarks, in rollback-journal mode.

The schema is the app's, made by its own migrations (app/migrations/): `drawings` and
`analyses` with realistic values (each analysis with its unguessable public handle; no stored
reasons, like the rows recorded before revision 0003).
Rows go in through `executemany` in large transactions with the journal off; the finished
file is switched to journal_mode=DELETE like the production database. Files are cached by
size under `benchmarks/work/`, so a second run reuses them.
"""

from __future__ import annotations

import base64
import random
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

WORK_DIR = Path(__file__).resolve().parent / "work"
BATCH_ROWS = 50_000
# A drawing plus its analysis, indexes included, takes about 500 bytes of the file.
_BYTES_PER_ROW_PAIR = 500
_GENERATOR_VERSION = 4  # 4: the schema of the app's migrations

_SUBJECTS = ("house", "family", "tree", "person", "animal", "free drawing", "self portrait")
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


def migrated_database(path: Path) -> Path:
    """A new, empty app database at `path`, made by the app's migrations."""
    from app.migrate import migrate
    from app.settings import AppSettings
    from opsd.settings import load_settings

    path.unlink(missing_ok=True)
    migrate(load_settings(AppSettings, database_path=path, database_url=None), backup_command=None)
    return path


INSERT_DRAWINGS = (
    "INSERT INTO drawings (id, filename, content_type, size_bytes, sha256, age_years, subject,"
    " storage_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_ANALYSES = (
    "INSERT INTO analyses (id, public_id, drawing_id, created_at, model_version, age_group,"
    " anomaly_score, threshold, is_anomaly, normalised_score, processing_time_ms)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def public_handle(rng: random.Random) -> str:
    """A handle shaped like the app's (128 random bits, URL-safe base64), reproducibly."""
    return base64.urlsafe_b64encode(rng.randbytes(16)).rstrip(b"=").decode()


def generate_app_database(path: Path, size_bytes: int, seed: int = 7) -> int:
    """Fill a new file at `path` until it holds at least `size_bytes`; returns the row pairs."""
    rng = random.Random(seed)
    conn = sqlite3.connect(migrated_database(path), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -262144")
        written = 0
        while (missing := size_bytes - _file_bytes(conn)) > 0:
            batch = max(1_000, min(BATCH_ROWS, missing // _BYTES_PER_ROW_PAIR))
            drawings, analyses = _rows(rng, written + 1, batch)
            conn.execute("BEGIN")
            conn.executemany(INSERT_DRAWINGS, drawings)
            conn.executemany(INSERT_ANALYSES, analyses)
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


_ROW_SPACING_S = 61  # about one upload a minute, like a busy service


def _rows(
    rng: random.Random, first_id: int, count: int
) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """`count` drawings and their analyses; timestamps grow with the id."""
    drawings: list[tuple[object, ...]] = []
    analyses: list[tuple[object, ...]] = []
    days: dict[int, str] = {}
    draw, bits = rng.random, rng.getrandbits
    for row_id in range(first_id, first_id + count):
        day, second = divmod(row_id * _ROW_SPACING_S, 86_400)
        if day not in days:
            days[day] = (_EPOCH + timedelta(days=day)).date().isoformat()
        date = days[day]
        hour, rest = divmod(second, 3600)
        created = f"{date}T{hour:02d}:{rest // 60:02d}:{rest % 60:02d}+00:00"
        extension, content_type = ("jpg", "image/jpeg") if draw() < 0.3 else ("png", "image/png")
        age = 2 + bits(16) % 17
        drawings.append(
            (
                row_id,
                f"IMG_{date.replace('-', '')}_{bits(20):06d}.{extension}",
                content_type,
                18_000 + bits(22),
                f"{bits(256):064x}",
                age,
                _SUBJECTS[bits(8) % len(_SUBJECTS)],
                f"drawings/{date.replace('-', '/')}/{bits(128):032x}.{extension}",
                created,
            )
        )
        age_group = _AGE_GROUPS[age]
        threshold = _THRESHOLDS[age_group]
        score = draw() ** 2.2
        analyses.append(
            (
                row_id,
                public_handle(rng),
                row_id,
                created,
                _MODEL_VERSIONS[bits(8) % len(_MODEL_VERSIONS)],
                age_group,
                round(score, 6),
                threshold,
                int(score > threshold),
                round(score / threshold, 6),
                round(60 + 90 * draw() + 400 * draw() ** 8, 2),
            )
        )
    return drawings, analyses


def main() -> None:
    import sys

    for text in sys.argv[1:] or ["100MB"]:
        started = time.perf_counter()
        path = app_database(parse_size(text))
        print(f"{path} {path.stat().st_size} bytes in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
