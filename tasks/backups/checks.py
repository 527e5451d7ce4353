"""Checks of a downloaded backup file against the metadata its object carries (ARCHITECTURE §4)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from opsd.database import DatabaseError, connect, integrity_errors
from tasks.backups.checksums import file_sha256
from tasks.backups.objects import BackupMetadata
from tasks.backups.snapshot import DatabaseFacts, integrity_summary, read_database_facts


def check_bytes(size: int, sha256: str, metadata: BackupMetadata) -> list[str]:
    problems = []
    if sha256 != metadata.sha256:
        problems.append(f"sha256 {sha256[:12]}… differs from the recorded {metadata.sha256[:12]}…")
    if size != metadata.size:
        problems.append(f"size {size} does not match the recorded {metadata.size}")
    return problems


def check_download(path: Path, metadata: BackupMetadata, *, full: bool) -> list[str]:
    """A downloaded backup against its object's metadata: the size and sha256 of its bytes
    (problems there come first), then the database checks. The file is hashed in a second
    thread while SQLite checks it: nothing is trusted before both are done."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as pool:
        sha256 = pool.submit(file_sha256, path)
        database_problems = check_database(path, metadata, full=full)
        byte_problems = check_bytes(path.stat().st_size, sha256.result(), metadata)
    return byte_problems or database_problems


def check_database(path: Path, metadata: BackupMetadata | None, full: bool) -> list[str]:
    """integrity_check always; with `full`, schema version, layout and row counts too."""
    if not full or metadata is None:
        errors = _integrity_only(path)
        return [f"integrity check failed: {integrity_summary(errors)}"] if errors else []
    facts = read_database_facts(path)
    if facts.integrity_errors:
        return [f"integrity check failed: {integrity_summary(facts.integrity_errors)}"]
    return [*_compare(facts, metadata), *_opens_like_the_app(path)]


def _integrity_only(path: Path) -> list[str]:
    """The check without the facts (row counts scan every table; a restore needs none)."""
    try:
        conn = connect(path, readonly=True)
    except DatabaseError as exc:
        return [str(exc)]
    try:
        return integrity_errors(conn)
    finally:
        conn.close()


def _compare(facts: DatabaseFacts, metadata: BackupMetadata) -> list[str]:
    problems = []
    expected = {
        "user_version": metadata.user_version,
        "alembic revision": metadata.alembic_revision,
        "page size": metadata.page_size,
        "page count": metadata.page_count,
    }
    found = {
        "user_version": facts.user_version,
        "alembic revision": facts.alembic_revision,
        "page size": facts.page_size,
        "page count": facts.page_count,
    }
    for name, value in expected.items():
        if found[name] != value:
            problems.append(f"{name} {found[name]!r} != recorded {value!r}")
    if facts.row_counts != metadata.row_counts:
        differing = sorted(
            table
            for table in facts.row_counts.keys() | metadata.row_counts.keys()
            if facts.row_counts.get(table) != metadata.row_counts.get(table)
        )
        shown = ", ".join(
            f"{t} {facts.row_counts.get(t)} != {metadata.row_counts.get(t)}" for t in differing[:3]
        )
        problems.append(f"row counts differ: {shown}")
    return problems


def _opens_like_the_app(path: Path) -> list[str]:
    """The app's own opening (the shared helper) and a foreign key check. A copy in WAL
    mode is switched to rollback-journal mode afterwards (tasks.backups.journal_mode)."""
    try:
        conn = connect(path, readonly=True)
    except DatabaseError as exc:
        return [f"cannot open as the app does: {exc}"]
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        violations = conn.execute("PRAGMA foreign_key_check").fetchmany(3)
    finally:
        conn.close()
    if violations:
        return [f"foreign key violations, first in table {violations[0][0]}"]
    return []
