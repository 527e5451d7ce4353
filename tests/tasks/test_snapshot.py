from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import sqlite3
from pathlib import Path

import pytest

import tasks.backups.memory as memory_module
import tasks.backups.snapshot as snapshot_module
from opsd.database import table_row_counts
from opsd.results import TaskError
from tasks.backups.scratch_files import remove_quietly
from tasks.backups.snapshot import CopyObserver, snapshot_database
from tests.conftest import add_analysis, create_app_database


def _rows(path: Path) -> int:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return int(conn.execute("SELECT count(*) FROM analyses").fetchone()[0])
    finally:
        conn.close()


def _insert(path: Path, busy_timeout_s: float) -> None:
    conn = sqlite3.connect(path, timeout=busy_timeout_s)
    try:
        _insert_with(conn)
    finally:
        conn.close()


def _insert_with(conn: sqlite3.Connection) -> None:
    add_analysis(conn, "2026-11-25T00:00:00+00:00")
    conn.commit()


def test_snapshot_is_an_exact_copy(tmp_path: Path) -> None:
    database = create_app_database(tmp_path / "app.db")
    copy = snapshot_database(database, tmp_path / "scratch", 1000)
    try:
        assert copy.parent == tmp_path / "scratch"
        assert copy.read_bytes() == database.read_bytes()
    finally:
        remove_quietly(copy)


class _Progress:
    def __init__(self) -> None:
        self.events: list[tuple[str, int]] = []

    def copy_started(self, path: Path, size: int) -> None:
        self.events.append(("started", size))

    def copied(self, count: int) -> None:
        self.events.append(("copied", count))

    def copy_ended(self) -> None:
        self.events.append(("ended", 0))


def test_the_observer_follows_the_copy_to_its_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = create_app_database(tmp_path / "app.db")
    size = database.stat().st_size
    monkeypatch.setattr(snapshot_module, "_COPY_CHUNK", size // 3 + 1)
    progress = _Progress()
    copy = snapshot_database(database, tmp_path / "scratch", 1000, progress)
    try:
        counts = [count for event, count in progress.events if event == "copied"]
        assert progress.events[0] == ("started", size)
        assert progress.events[-1] == ("ended", 0)
        assert counts == sorted(counts) and len(counts) == 3 and counts[-1] == size
    finally:
        remove_quietly(copy)


def test_the_copy_does_not_truncate_its_scratch_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On ext4, closing a file truncated to zero bytes writes all of it out to disk, which
    the app's writers would wait for: the new scratch file is opened as it is."""
    database = create_app_database(tmp_path / "app.db")
    real_open = Path.open
    modes: list[str] = []

    def open_recording(path: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if path.parent == tmp_path / "scratch":
            modes.append(mode)
        return real_open(path, mode, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(Path, "open", open_recording)
    copy = snapshot_database(database, tmp_path / "scratch", 1000)
    try:
        assert modes == ["r+b"]
        assert copy.read_bytes() == database.read_bytes()
    finally:
        remove_quietly(copy)


@pytest.mark.parametrize("memory", ["ample", "too little"])
def test_no_writer_commits_while_the_file_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory: str
) -> None:
    """Through the page cache, or past it (a file larger than the memory at hand)."""
    database = create_app_database(tmp_path / "app.db")
    if memory == "too little":
        monkeypatch.setattr(memory_module, "available_memory", lambda: database.stat().st_size)
    before = _rows(database)
    real_copy = snapshot_module._copy_bytes
    refused: list[str] = []

    def copy_while_a_writer_tries(
        source_fd: int, target: Path, size: int, observer: CopyObserver
    ) -> None:
        with pytest.raises(sqlite3.OperationalError) as caught:
            _insert(database, busy_timeout_s=0)
        refused.append(str(caught.value))
        real_copy(source_fd, target, size, observer)

    monkeypatch.setattr(snapshot_module, "_copy_bytes", copy_while_a_writer_tries)
    copy = snapshot_database(database, tmp_path / "scratch", 1000)
    try:
        assert refused == ["database is locked"]
        assert _rows(copy) == before
        _insert(database, busy_timeout_s=0)  # the lock ended with the snapshot
        assert _rows(database) == before + 1
    finally:
        remove_quietly(copy)


def test_the_file_is_read_into_the_page_cache_before_writers_are_locked_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = create_app_database(tmp_path / "app.db")
    before = _rows(database)
    real_sendfile, real_warm = os.sendfile, snapshot_module._warm_page_cache
    warmed: list[int] = []

    def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        sent = real_sendfile(out_fd, in_fd, offset, count)
        if os.readlink(f"/proc/self/fd/{out_fd}") == os.devnull:
            warmed.append(sent)
        return sent

    def warm_while_a_writer_commits(source_fd: int) -> None:
        _insert(database, busy_timeout_s=0)  # no lock is held yet
        real_warm(source_fd)

    monkeypatch.setattr(os, "sendfile", sendfile)
    monkeypatch.setattr(snapshot_module, "_warm_page_cache", warm_while_a_writer_commits)
    copy = snapshot_database(database, tmp_path / "scratch", 1000)
    try:
        assert sum(warmed) == database.stat().st_size
        assert _rows(copy) == before + 1
    finally:
        remove_quietly(copy)


def _sendfile_targets(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    real_sendfile = os.sendfile
    targets: list[str] = []

    def sendfile(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        targets.append(os.readlink(f"/proc/self/fd/{out_fd}"))
        return real_sendfile(out_fd, in_fd, offset, count)

    monkeypatch.setattr(os, "sendfile", sendfile)
    return targets


def _direct_opens(monkeypatch: pytest.MonkeyPatch, refuse: bool = False) -> list[str]:
    """What was opened or switched to O_DIRECT; with `refuse`, O_DIRECT fails as on tmpfs."""
    real_open, real_fcntl = os.open, fcntl.fcntl
    seen: list[str] = []

    def record(path: str, flags: int, *args: object, **kwargs: object) -> object:
        if flags & os.O_DIRECT:
            seen.append(Path(path).name)
            if refuse:
                raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    def switch(fd: int, command: int, arg: int = 0) -> int:
        if command == fcntl.F_SETFL and arg & os.O_DIRECT:
            seen.append(Path(os.readlink(f"/proc/self/fd/{fd}")).name)
            if refuse:
                raise OSError(errno.EINVAL, "Invalid argument")
        return real_fcntl(fd, command, arg)

    monkeypatch.setattr(os, "open", record)
    monkeypatch.setattr(fcntl, "fcntl", switch)
    return seen


def test_a_file_too_large_for_the_memory_at_hand_is_copied_past_the_page_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Neither read into the cache first nor copied through it: each page would evict another
    (issue 15). The copy is not followed by the hashing, which would share the task's CPU
    with it while writers wait."""
    database = create_app_database(tmp_path / "app.db")
    before = _rows(database)
    monkeypatch.setattr(memory_module, "available_memory", lambda: database.stat().st_size)
    monkeypatch.setattr(snapshot_module, "_COPY_CHUNK", 64 << 10)
    targets = _sendfile_targets(monkeypatch)
    direct = _direct_opens(monkeypatch)
    progress = _Progress()
    copy = snapshot_database(database, tmp_path / "scratch", 1000, progress)
    try:
        assert targets == [] and progress.events == []
        assert direct == ["app.db", copy.name]
        assert copy.read_bytes() == database.read_bytes()
        with open(database, "rb") as handle:  # the source's descriptor got its flags back
            assert not fcntl.fcntl(handle.fileno(), fcntl.F_GETFL) & os.O_DIRECT
        _insert(database, busy_timeout_s=0)  # and the read lock ended with the copy
        assert _rows(database) == before + 1
    finally:
        remove_quietly(copy)


@pytest.mark.parametrize("why", ["no O_DIRECT", "an unaligned size"])
def test_a_large_file_is_copied_through_the_cache_where_o_direct_cannot_be_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, why: str
) -> None:
    database = create_app_database(tmp_path / "app.db")
    if why == "an unaligned size":
        with sqlite3.connect(tmp_path / "small-pages.db") as conn:
            conn.execute("PRAGMA page_size = 512")
            conn.execute("CREATE TABLE t (v TEXT)")
            conn.executemany("INSERT INTO t VALUES (?)", [("x" * 100,)] * 25)
        conn.close()
        database = tmp_path / "small-pages.db"
        assert database.stat().st_size % 4096
    monkeypatch.setattr(memory_module, "available_memory", lambda: database.stat().st_size)
    targets = _sendfile_targets(monkeypatch)
    _direct_opens(monkeypatch, refuse=why == "no O_DIRECT")
    copy = snapshot_database(database, tmp_path / "scratch", 1000)
    try:
        assert os.devnull not in targets and targets
        assert copy.read_bytes() == database.read_bytes()
    finally:
        remove_quietly(copy)


def test_an_uncached_copy_of_a_file_shorter_than_said_fails(tmp_path: Path) -> None:
    source = tmp_path / "short.db"
    source.write_bytes(os.urandom(3 * 4096))
    target = tmp_path / "copy.db"
    target.touch()
    with open(source, "rb") as handle, pytest.raises(OSError, match="after 12288 of 16384 bytes"):
        snapshot_module._copy_uncached(handle.fileno(), target, 4 * 4096)


def test_wal_database_is_copied_with_its_committed_wal_pages(tmp_path: Path) -> None:
    database = create_app_database(tmp_path / "app.db")
    before = _rows(database)
    writer = sqlite3.connect(database)
    try:
        writer.execute("PRAGMA journal_mode = WAL")
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        _insert_with(writer)
        assert Path(f"{database}-wal").stat().st_size > 0
        copy = snapshot_database(database, tmp_path / "scratch", 1000)
    finally:
        writer.close()
    try:
        assert _rows(copy) == before + 1
    finally:
        remove_quietly(copy)


def test_copy_falls_back_to_reads_where_sendfile_is_unsupported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = create_app_database(tmp_path / "app.db")

    def unsupported(*_: object) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(os, "sendfile", unsupported)
    copy = snapshot_database(database, tmp_path / "scratch", 1000)
    try:
        assert copy.read_bytes() == database.read_bytes()
    finally:
        remove_quietly(copy)


def test_full_scratch_disk_fails_naming_it_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = create_app_database(tmp_path / "app.db")

    real_sendfile = os.sendfile

    def disk_full(out_fd: int, in_fd: int, offset: int, count: int) -> int:
        if os.readlink(f"/proc/self/fd/{out_fd}") == os.devnull:  # warming the cache
            return real_sendfile(out_fd, in_fd, offset, count)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "sendfile", disk_full)
    scratch = tmp_path / "scratch"
    with pytest.raises(TaskError, match=f"into {scratch}: .*No space left on device"):
        snapshot_database(database, scratch, 1000)
    assert list(scratch.iterdir()) == []
    _insert(database, busy_timeout_s=0)  # and the read lock is gone


def _mmap_size_seen_by(monkeypatch: pytest.MonkeyPatch, name: str) -> list[int]:
    """PRAGMA mmap_size of the connection `tasks.backups.snapshot.<name>` is called with."""
    seen: list[int] = []
    real = getattr(snapshot_module, name)

    def spy(conn: sqlite3.Connection, *args: object) -> object:
        seen.append(int(conn.execute("PRAGMA mmap_size").fetchone()[0]))
        return real(conn, *args)

    monkeypatch.setattr(snapshot_module, name, spy)
    return seen


def test_the_quick_check_of_a_snapshot_that_fits_in_memory_reads_it_through_a_map(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A third of the CPU of a read per page where the file stays cached (issue 15)."""
    db = create_app_database(tmp_path / "app.db")
    monkeypatch.setattr(memory_module, "available_memory", lambda: 2 * db.stat().st_size)
    seen = _mmap_size_seen_by(monkeypatch, "quick_check_errors")
    check = snapshot_module.BackgroundIntegrityCheck(db)
    assert check.errors() == []
    assert seen == [db.stat().st_size]


def test_the_quick_check_finds_a_damaged_page(tmp_path: Path) -> None:
    db = create_app_database(tmp_path / "app.db", analyses=3000)
    size = db.stat().st_size
    with db.open("r+b") as handle:  # the last page's b-tree header overwritten
        handle.seek(size - 4096)
        handle.write(b"\xff" * 64)
    check = snapshot_module.BackgroundIntegrityCheck(db)
    assert check.errors() != []


def test_the_facts_of_a_snapshot_are_read_through_a_memory_map_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = create_app_database(tmp_path / "app.db")
    seen = _mmap_size_seen_by(monkeypatch, "scanned_row_counts")
    facts = snapshot_module.read_database_facts(db, check_integrity=False, mapped=True)
    assert seen == [db.stat().st_size]
    assert facts.page_count * facts.page_size == db.stat().st_size
    unmapped = _mmap_size_seen_by(monkeypatch, "table_row_counts")
    snapshot_module.read_database_facts(db, check_integrity=False)
    assert seen[1:] == [] and unmapped == [0]  # restore and the drill read as before


def test_a_snapshots_rows_are_counted_by_scanning_each_table_not_an_index(
    tmp_path: Path,
) -> None:
    """The app's smallest indexes, through which SQLite would count, are on random keys
    whose pages lie all over the file (issue 15); the counts are the same."""
    db = create_app_database(tmp_path / "app.db", analyses=300)
    statements: list[str] = []
    with contextlib.closing(sqlite3.connect(db)) as conn:
        expected = table_row_counts(conn)
        conn.set_trace_callback(statements.append)
        assert snapshot_module.scanned_row_counts(conn) == expected
        plans = [
            conn.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            for sql in statements
            if sql.startswith("SELECT count(*)")
        ]
    assert expected["analyses"] == 300 and len(plans) == len(expected)
    assert all("INDEX" not in str(plan) for plan in plans), plans
