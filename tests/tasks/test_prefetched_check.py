"""The quick_check of a snapshot larger than memory, through the VFS that gathers each b-tree's
pages ahead (issue 15): the same verdict as SQLite's own reads on sound and damaged files,
with a few large reads instead of one per page."""

from __future__ import annotations

import errno
import random
import shutil
import sqlite3
import threading
from pathlib import Path

import apsw
import pytest

import tasks.backups.memory as memory_module
import tasks.backups.prefetched_check as prefetched_check
import tasks.backups.snapshot as snapshot_module
from tests.conftest import create_app_database

PAGE = 4096


@pytest.fixture(scope="module")
def sound_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """~600 pages; its indexes on random keys (storage_key, public_id) have interior pages."""
    return create_app_database(tmp_path_factory.mktemp("db") / "app.db", analyses=2500)


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 16 pages, so that every b-tree is gathered in several."""
    monkeypatch.setattr(prefetched_check, "CHUNK_BYTES", 16 * PAGE)


def sqlite_own_verdict(path: Path) -> list[str]:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return prefetched_check.quick_check_errors(conn)
    finally:
        conn.close()


def prefetched_verdict(path: Path) -> list[str]:
    conn = prefetched_check.open_for_check(path)
    try:
        return prefetched_check.quick_check_errors(conn)
    finally:
        conn.close()


def pages_of(path: Path, tree: str, kind: str) -> list[int]:
    """Page numbers of one b-tree's 'internal' or 'leaf' pages (SQLite's dbstat table)."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        query = "SELECT pageno FROM dbstat WHERE name = ? AND pagetype = ? ORDER BY pageno"
        return [row[0] for row in conn.execute(query, (tree, kind))]
    finally:
        conn.close()


def write_at(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def child_pointer_offset(path: Path, page: int) -> int:
    """Where the first cell's child page number sits in an interior page."""
    with path.open("rb") as handle:
        handle.seek((page - 1) * PAGE + 12)
        cell = int.from_bytes(handle.read(2), "big")
    return (page - 1) * PAGE + cell


def garbage_in_an_index_leaf(path: Path) -> None:
    leaf = pages_of(path, "ix_analyses_public_id", "leaf")[3]
    write_at(path, (leaf - 1) * PAGE + 2000, bytes(range(200)))


def an_interior_pointer_into_another_tree(path: Path) -> None:
    interior = pages_of(path, "sqlite_autoindex_drawings_1", "internal")[0]
    stranger = pages_of(path, "analyses", "leaf")[5]
    write_at(path, child_pointer_offset(path, interior), stranger.to_bytes(4, "big"))


def an_interior_pointer_past_the_end(path: Path) -> None:
    interior = pages_of(path, "analyses", "internal")[0]
    write_at(path, child_pointer_offset(path, interior), (10**6).to_bytes(4, "big"))


def a_zeroed_leaf(path: Path) -> None:
    leaf = pages_of(path, "analyses", "leaf")[7]
    write_at(path, (leaf - 1) * PAGE, bytes(PAGE))


def a_zeroed_interior_page(path: Path) -> None:
    interior = pages_of(path, "ix_analyses_public_id", "internal")[0]
    write_at(path, (interior - 1) * PAGE, bytes(PAGE))


def truncated(path: Path) -> None:
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - 8 * PAGE)


DAMAGE = [
    garbage_in_an_index_leaf,
    an_interior_pointer_into_another_tree,
    an_interior_pointer_past_the_end,
    a_zeroed_leaf,
    a_zeroed_interior_page,
    truncated,
]


def test_a_sound_file_passes(sound_database: Path) -> None:
    assert sqlite_own_verdict(sound_database) == []
    assert prefetched_verdict(sound_database) == []


@pytest.mark.parametrize("damage", DAMAGE, ids=[d.__name__ for d in DAMAGE])
def test_a_damaged_file_gets_the_verdict_of_sqlites_own_reads(
    sound_database: Path, tmp_path: Path, damage: object
) -> None:
    damaged = tmp_path / "damaged.db"
    shutil.copyfile(sound_database, damaged)
    damage(damaged)  # type: ignore[operator]
    expected = sqlite_own_verdict(damaged)
    assert expected, "the damage must be one SQLite's check sees"
    assert prefetched_verdict(damaged) == expected


def test_the_leaves_come_in_large_reads_not_one_read_per_page(
    sound_database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[tuple[int, int]] = []
    close = prefetched_check._PrefetchingFile.xClose

    def counted_close(self: prefetched_check._PrefetchingFile) -> None:
        reads.append((self.large_reads, self.small_reads))
        close(self)

    monkeypatch.setattr(prefetched_check._PrefetchingFile, "xClose", counted_close)
    assert prefetched_verdict(sound_database) == []
    pages = sound_database.stat().st_size // PAGE
    [(large, small)] = reads
    assert large > 0
    assert large + small < pages / 4, f"{large} + {small} reads for {pages} pages"


def test_a_read_error_fails_the_check(
    sound_database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error of the disk half-way through is a failed check, never a passed one."""

    def failing_read(self: object, buffer: object, offset: int) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(memory_module, "available_memory", lambda: 0)
    monkeypatch.setattr(prefetched_check._PrefetchingFile, "_read_into", failing_read)
    check = snapshot_module.BackgroundIntegrityCheck(sound_database)
    assert check.errors() != []


def test_a_snapshot_too_large_for_memory_is_checked_through_the_prefetching_vfs(
    sound_database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_module, "available_memory", lambda: sound_database.stat().st_size)
    opened: list[Path] = []
    real_open = prefetched_check.open_for_check

    def spy(path: Path) -> apsw.Connection:
        opened.append(path)
        return real_open(path)

    monkeypatch.setattr(prefetched_check, "open_for_check", spy)
    check = snapshot_module.BackgroundIntegrityCheck(sound_database)
    assert check.errors() == []
    assert opened == [sound_database]


def test_a_file_system_without_o_direct_is_read_through_the_page_cache(
    sound_database: Path, tmp_path: Path
) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no tmpfs at /dev/shm")
    copy = shm / f"prefetch-{tmp_path.name}.db"
    shutil.copyfile(sound_database, copy)
    try:
        assert prefetched_verdict(copy) == []
    finally:
        copy.unlink()


def test_a_check_cancelled_half_way_stops_and_passes_nothing(
    sound_database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SIGTERM or a failed upload cancels the check (tasks/backup.py): it stops at the next
    page SQLite reads, and what it leaves is an error, never a pass."""
    monkeypatch.setattr(memory_module, "available_memory", lambda: 0)
    entered = threading.Event()
    release = threading.Event()
    gather = prefetched_check._PrefetchingFile._gather

    def held_gather(self: prefetched_check._PrefetchingFile, chunk: int) -> None:
        entered.set()
        release.wait(10)
        gather(self, chunk)

    monkeypatch.setattr(prefetched_check._PrefetchingFile, "_gather", held_gather)
    check = snapshot_module.BackgroundIntegrityCheck(sound_database)
    assert entered.wait(10)
    threading.Timer(0.2, release.set).start()
    check.cancel()
    assert check.errors() == ["interrupted"]


def database_unlike_the_apps(path: Path, page_size: int) -> Path:
    """Other page sizes, rows spilling onto overflow pages, a free list, a WITHOUT ROWID
    table: what the app's schema does not have today but a database may."""
    rng = random.Random(3)
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA page_size = {page_size}")
    conn.execute("CREATE TABLE blobs (id INTEGER PRIMARY KEY, key TEXT, body BLOB)")
    conn.execute("CREATE INDEX blobs_key ON blobs (key)")
    conn.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID")
    for _ in range(800):
        conn.execute(
            "INSERT INTO blobs (key, body) VALUES (?, ?)",
            (rng.randbytes(8).hex(), rng.randbytes(rng.randint(10, 6000))),
        )
        conn.execute("INSERT INTO kv VALUES (?, ?)", (rng.randbytes(12).hex(), "x" * 200))
    conn.execute("DELETE FROM blobs WHERE id % 7 = 0")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize("page_size", [512, 65536])
def test_a_database_unlike_the_apps_gets_the_verdict_of_sqlites_own_reads(
    tmp_path: Path, page_size: int
) -> None:
    db = database_unlike_the_apps(tmp_path / "other.db", page_size)
    assert sqlite_own_verdict(db) == prefetched_verdict(db) == []
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    query = "SELECT pageno FROM dbstat WHERE name = 'kv' AND pagetype = 'leaf' LIMIT 1"
    [(leaf,)] = list(conn.execute(query))
    conn.close()
    write_at(db, (leaf - 1) * page_size + page_size // 2, bytes(range(256)))
    expected = sqlite_own_verdict(db)
    assert expected
    assert prefetched_verdict(db) == expected
