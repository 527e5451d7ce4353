"""What an SQLite b-tree page says about itself (the file format's section 1.6): its kind,
its cell count, and the children of an interior page. Read by the check's read-ahead
(prefetched_check) and by the row census of the copy (row_census)."""

from __future__ import annotations

import struct

HEADER_BYTES = 100  # page 1 starts with the database header
INDEX_INTERIOR, TABLE_INTERIOR, INDEX_LEAF, TABLE_LEAF = 0x02, 0x05, 0x0A, 0x0D
INTERIOR_KINDS = (INDEX_INTERIOR, TABLE_INTERIOR)


def page_size(header: bytes) -> int:
    """The page size the database header gives; 0 when it gives none."""
    if len(header) < HEADER_BYTES or not header.startswith(b"SQLite format 3\x00"):
        return 0
    size = int.from_bytes(header[16:18], "big")
    size = 65536 if size == 1 else size
    return size if size >= 512 and size & (size - 1) == 0 else 0


def children(
    number: int, page: bytes | memoryview, page_count: int | None = None
) -> list[int] | None:
    """The child page numbers of interior page `number` in key order (with `page_count`, only
    those that can be pages of the file); None for any other page."""
    header = HEADER_BYTES if number == 1 else 0
    if len(page) < header + 12 or page[header] not in INTERIOR_KINDS:
        return None
    cells = int.from_bytes(page[header + 3 : header + 5], "big")
    cells = min(cells, (len(page) - header - 12) // 2)
    limit = len(page) - 4
    found = [
        _CHILD.unpack_from(page, at)[0]
        for at in _POINTERS[cells].unpack_from(page, header + 12)
        if at <= limit
    ]
    found.append(_CHILD.unpack_from(page, header + 8)[0])
    if page_count is None:
        return found
    return [child for child in found if 1 <= child <= page_count]


class _PointerFormats(dict[int, struct.Struct]):
    def __missing__(self, cells: int) -> struct.Struct:
        self[cells] = struct.Struct(f">{cells}H")
        return self[cells]


_POINTERS = _PointerFormats()
_CHILD = struct.Struct(">I")
