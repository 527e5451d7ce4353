"""Each table's rows, counted from the pages of the snapshot as the one pass that hashes it reads
them (tasks.backups.checksums), so that the backup's metadata needs no further pass over a file
larger than memory (issue 15): SQL's count(*) reads every leaf again, 0.55 CPU s for 1 GB
in the task's limits, where this costs a tenth of that.

Every b-tree page starts with its kind and its cell count. A table's rows are the cells of the
leaves reached from its root through its interior pages. Pages on the free list are never
reached, whatever they still hold. A tree that cannot be walked (a pointer out of the file, a
page of the wrong kind, a cycle, a WITHOUT ROWID table, whose rows lie in an index-like tree)
yields no counts: the caller counts by SQL, and the integrity check judges the file.
"""

from __future__ import annotations

from collections.abc import Mapping

from tasks.backups.btree_pages import HEADER_BYTES, TABLE_INTERIOR, TABLE_LEAF, children, page_size

_CELL_COUNT = 3  # two bytes, big-endian, after the kind and the first freeblock


class RowCensus:
    """Fed the file's bytes in order, in chunks of whole pages (`feed`); any other order
    and the census gives up (`row_counts` is None)."""

    def __init__(self) -> None:
        self._page_size = 0
        self._next_offset = 0
        self._given_up = False
        # Indexed by page number: the first byte of each stands for no page.
        self._kinds = bytearray(1)
        self._cells_high = bytearray(1)
        self._cells_low = bytearray(1)
        self._interiors: dict[int, bytes] = {}  # of tables: a few pages in a thousand

    def feed(self, offset: int, chunk: memoryview) -> None:
        if self._given_up:
            return
        if offset == 0:
            self._page_size = page_size(bytes(chunk[:HEADER_BYTES]))
        size = self._page_size
        if not size or offset != self._next_offset or len(chunk) % size:
            self._given_up = True
            return
        self._next_offset = offset + len(chunk)
        first = len(self._kinds)  # the number of the chunk's first page
        kinds = bytes(chunk[0::size])
        self._kinds += kinds
        self._cells_high += bytes(chunk[_CELL_COUNT::size])
        self._cells_low += bytes(chunk[_CELL_COUNT + 1 :: size])
        if offset == 0:  # page 1 is the schema's; its b-tree header follows the file's
            self._kinds[1] = chunk[HEADER_BYTES]
        at = kinds.find(TABLE_INTERIOR, 1 if offset == 0 else 0)
        while at >= 0:
            self._interiors[first + at] = bytes(chunk[at * size : (at + 1) * size])
            at = kinds.find(TABLE_INTERIOR, at + 1)

    def row_counts(self, roots: Mapping[str, int]) -> dict[str, int] | None:
        """The rows of each table given by its root page; None unless every table's tree could
        be walked through the pages fed."""
        if self._given_up or len(self._kinds) == 1:
            return None
        counts = {}
        for name, root in roots.items():
            rows = self._rows_below(root)
            if rows is None:
                return None
            counts[name] = rows
        return counts

    def _rows_below(self, root: int) -> int | None:
        pages = len(self._kinds) - 1
        level, seen = [root], set()
        while level:
            fresh = set(level)
            if len(fresh) != len(level) or not seen.isdisjoint(fresh):
                return None  # a cycle, or a page in two places
            if min(level) < 2 or max(level) > pages:
                return None
            seen |= fresh
            kinds = set(map(self._kinds.__getitem__, level))
            if kinds == {TABLE_LEAF}:  # a sound b-tree has all its leaves at one depth
                high = sum(map(self._cells_high.__getitem__, level))
                return (high << 8) + sum(map(self._cells_low.__getitem__, level))
            if kinds != {TABLE_INTERIOR}:
                return None
            below: list[int] = []
            for number in level:
                below += children(number, self._interiors[number]) or ()
                if len(below) > pages:
                    return None
            level = below
        return None
