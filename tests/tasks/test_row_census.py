"""Each table's rows counted from the pages the hashing pass reads (issue 15): the same counts
as SQL's count(*) on sound files of every shape, and none at all where the pages cannot be
trusted to say, so that the backup counts by SQL instead."""

from __future__ import annotations

import os
import random
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from opsd.database import table_root_pages, table_row_counts
from tasks.backups import snapshot as snapshot_module
from tasks.backups.btree_pages import TABLE_INTERIOR, TABLE_LEAF, children
from tasks.backups.checksums import DigestPass
from tasks.backups.row_census import RowCensus
from tests.conftest import create_app_database


def census_of(path: Path, chunk: int = 64 << 10) -> RowCensus:
    census = RowCensus()
    data = path.read_bytes()
    for offset in range(0, len(data), chunk):
        census.feed(offset, memoryview(data)[offset : offset + chunk])
    return census


def sql_counts(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as conn:
        return table_row_counts(conn)


def census_counts(path: Path, chunk: int = 64 << 10) -> dict[str, int] | None:
    with closing(sqlite3.connect(path)) as conn:
        roots = table_root_pages(conn)
    return census_of(path, chunk).row_counts(roots)


def page_kinds(path: Path) -> list[int]:
    data = path.read_bytes()
    size = int.from_bytes(data[16:18], "big")
    size = 65536 if size == 1 else size
    return [data[offset] for offset in range(size, len(data), size)]  # from page 2


def cells_in_every_table_leaf(path: Path) -> int:
    data = path.read_bytes()
    size = len(data) // int.from_bytes(data[28:32], "big")
    return sum(
        int.from_bytes(data[offset + 3 : offset + 5], "big")
        for offset in range(size, len(data), size)
        if data[offset] == TABLE_LEAF
    )


@pytest.fixture(scope="module")
def app_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Its two large tables have interior pages above their leaves."""
    return create_app_database(tmp_path_factory.mktemp("db") / "app.db", analyses=6000)


def test_the_apps_tables_get_the_counts_sql_gives(app_database: Path) -> None:
    assert page_kinds(app_database).count(TABLE_INTERIOR) >= 2
    assert census_counts(app_database) == sql_counts(app_database)


@pytest.mark.parametrize("chunk", [4 << 20, 1 << 20, 4096])
def test_the_counts_do_not_depend_on_how_the_file_is_read(app_database: Path, chunk: int) -> None:
    assert census_counts(app_database, chunk) == sql_counts(app_database)


def test_the_hashing_pass_counts_as_it_hashes(app_database: Path) -> None:
    with app_database.open("rb", buffering=0) as handle:
        digest = DigestPass(handle.fileno(), app_database.stat().st_size, 5 << 20)
        while not digest.done:
            digest.step()
    with closing(sqlite3.connect(app_database)) as conn:
        roots = table_root_pages(conn)
    assert digest.census.row_counts(roots) == sql_counts(app_database)


def database_unlike_the_apps(path: Path, page_size: int) -> Path:
    """Many tables (the schema spans pages, page 1 is an interior page), rows on overflow
    pages, an empty table, and deleted rows whose leaves wait on the free list still looking
    like leaves of a table."""
    rng = random.Random(page_size)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(f"PRAGMA page_size = {page_size}")
        conn.execute("PRAGMA secure_delete = OFF")  # freed pages keep what they held
        for n in range(60):
            conn.execute(f"CREATE TABLE t{n:02d}_{'x' * 60} (id INTEGER PRIMARY KEY, v TEXT)")
        conn.execute("CREATE TABLE big (id INTEGER PRIMARY KEY, v BLOB)")
        conn.execute("CREATE TABLE gone (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany(
            "INSERT INTO big (v) VALUES (?)",
            [(rng.randbytes(rng.choice([10, 300, 3 * page_size])),) for _ in range(3000)],
        )
        conn.executemany("INSERT INTO gone (v) VALUES (?)", [("y" * 50,)] * 20000)
        conn.executemany("INSERT INTO t07_" + "x" * 60 + " (v) VALUES (?)", [("z",)] * 900)
        conn.execute("DELETE FROM gone WHERE id > 10")
        conn.execute("DELETE FROM big WHERE id % 3 = 0")
        conn.commit()
        assert conn.execute("PRAGMA freelist_count").fetchone()[0] > 0
    return path


@pytest.mark.parametrize("page_size", [512, 4096, 65536])
def test_a_database_unlike_the_apps_gets_the_counts_sql_gives(
    tmp_path: Path, page_size: int
) -> None:
    path = database_unlike_the_apps(tmp_path / "other.db", page_size)
    counts = census_counts(path, max(page_size, 64 << 10))
    assert counts == sql_counts(path)
    assert counts["gone"] == 10 and counts["big"] == 2000
    # The free list still holds leaves of the deleted rows: counted, they would be too many.
    assert cells_in_every_table_leaf(path) > sum(counts.values())


def test_a_without_rowid_table_leaves_the_counting_to_sql(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE pairs (a TEXT, b TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID")
        conn.executemany("INSERT INTO pairs VALUES (?, ?)", [(str(i), "b") for i in range(500)])
        conn.commit()
    assert census_counts(path) is None
    facts = snapshot_module.read_database_facts(path, census=census_of(path))
    assert facts.row_counts == {"pairs": 500}


def test_pages_fed_out_of_order_or_in_pieces_give_no_counts(app_database: Path) -> None:
    data = memoryview(app_database.read_bytes())
    with closing(sqlite3.connect(app_database)) as conn:
        roots = table_root_pages(conn)
    skipped = RowCensus()
    skipped.feed(0, data[:65536])
    skipped.feed(131072, data[131072:])
    assert skipped.row_counts(roots) is None
    ragged = RowCensus()
    ragged.feed(0, data[:5000])
    ragged.feed(5000, data[5000:])
    assert ragged.row_counts(roots) is None
    assert RowCensus().row_counts(roots) is None


def test_a_file_that_is_not_sqlite_gives_no_counts(tmp_path: Path) -> None:
    path = tmp_path / "noise.db"
    path.write_bytes(random.Random(3).randbytes(1 << 20))
    assert census_of(path).row_counts({"t": 2}) is None


def _interior_pages(path: Path) -> list[int]:
    return [n + 2 for n, kind in enumerate(page_kinds(path)) if kind == TABLE_INTERIOR]


def _set_right_child(path: Path, page: int, child: int, page_size: int = 4096) -> None:
    with path.open("r+b") as handle:
        handle.seek((page - 1) * page_size + 8)
        handle.write(child.to_bytes(4, "big"))


@pytest.mark.parametrize(
    "pointer", ["itself", "past the end", "page 1"], ids=lambda p: p.replace(" ", "-")
)
def test_a_tree_that_cannot_be_walked_gives_no_counts(
    app_database: Path, tmp_path: Path, pointer: str
) -> None:
    path = tmp_path / "damaged.db"
    path.write_bytes(app_database.read_bytes())
    page = _interior_pages(path)[-1]
    target = {"itself": page, "past the end": os.path.getsize(path) // 4096 + 5, "page 1": 1}
    _set_right_child(path, page, target[pointer])
    with closing(sqlite3.connect(app_database)) as conn:
        roots = table_root_pages(conn)
    assert census_of(path).row_counts(roots) is None


def _levels(path: Path, root: int) -> list[list[int]]:
    data = path.read_bytes()
    levels = [[root]]
    while below := [
        child
        for page in levels[-1]
        for child in children(page, data[(page - 1) * 512 : page * 512]) or ()
    ]:
        levels.append(below)
    return levels


def test_a_table_whose_leaves_are_not_all_at_one_depth_gives_no_counts(tmp_path: Path) -> None:
    """A page of the level above the leaves that points at a leaf where its siblings point
    at interior pages."""
    path = database_unlike_the_apps(tmp_path / "other.db", 512)
    with closing(sqlite3.connect(path)) as conn:
        roots = table_root_pages(conn)
    levels = _levels(path, roots["big"])
    assert len(levels) >= 3
    _set_right_child(path, levels[0][0], levels[-1][0], page_size=512)
    assert census_of(path).row_counts(roots) is None
