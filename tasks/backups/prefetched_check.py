"""`PRAGMA quick_check` of a snapshot larger than the memory at hand, each b-tree's pages read
ahead in large sequential reads (issue 15).

The check walks every b-tree in key order. The pages of an index on a random key lie all over
the file, so read one at a time (a read() per page, 244,000 for 1 GB) the check costs 8.5-9
CPU s of the task's 0.25 vCPU, most of it the kernel's, and through a memory map it reads
the file twenty times over once the task's other memory is taken. Here SQLite reads through a
VFS of ours (apsw): when the check enters a b-tree, the VFS reads the tree's interior pages,
learns from them which leaves will follow and in what order, and gathers those leaves a
chunk at a time (CHUNK_BYTES, or a quarter of the memory at hand if less; past the page cache
with O_DIRECT) in 1 MiB reads that skip what no leaf needs. SQLite still reads and checks
every byte itself: what the VFS hands over is always the file's bytes at the offset asked
for, only read earlier. A damaged interior page at worst makes the read-ahead useless, never
the check wrong.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import threading
from collections import OrderedDict
from pathlib import Path

import apsw

from tasks.backups import memory
from tasks.backups.btree_pages import HEADER_BYTES, children, page_size

VFS_NAME = "backup-prefetch"
CHUNK_BYTES = 64 << 20
_SCAN_BYTES = 1 << 20
_SMALL_BYTES = 64 << 10
_SMALL_CACHE_BYTES = 4 << 20


class _PrefetchingFile(apsw.VFSFile):
    """The main database file, opened read-only, with the read-ahead described above."""

    def __init__(self, name: apsw.URIFilename, flags: list[int], chunk_bytes: int) -> None:
        super().__init__("", name, flags)
        self._path = name.filename()
        self._fd = _open_direct(self._path)
        self._scan = mmap.mmap(-1, _SCAN_BYTES)  # page-aligned, as O_DIRECT needs
        self._block = mmap.mmap(-1, _SMALL_BYTES)
        self._small: OrderedDict[int, bytes] = OrderedDict()
        self.large_reads = 0
        self.small_reads = 0
        self._page_size = page_size(self._read_small(0, HEADER_BYTES))
        self._page_count = os.fstat(self._fd).st_size // (self._page_size or 1)
        self._chunk_pages = max(1, chunk_bytes // (self._page_size or 1))
        self._interiors: dict[int, bytes] = {}
        self._leaves: dict[int, bytes] = {}
        self._chunks: list[list[int]] = []
        self._chunk_of: dict[int, int] = {}

    def xRead(self, amount: int, offset: int) -> bytes:
        size = self._page_size
        if not size or amount != size or offset % size:
            return self._read_small(offset, amount)
        number = offset // size + 1
        page = self._leaves.get(number) or self._interiors.get(number)
        if page is None and (chunk := self._chunk_of.get(number)) is not None:
            self._gather(chunk)
            page = self._leaves.get(number)
        if page is None:
            page = self._read_small(offset, amount)
            if children(number, page, self._page_count) is not None:
                self._enter_tree(number, page)
        return page

    def xClose(self) -> None:
        os.close(self._fd)
        self._scan.close()
        self._block.close()
        self._small.clear()
        self._interiors, self._leaves, self._chunks, self._chunk_of = {}, {}, [], {}
        super().xClose()

    def _enter_tree(self, root: int, page: bytes) -> None:
        """Read the interior pages under `root` level by level; the leaves below, in the
        order the check will visit them, become the chunks to gather."""
        self._interiors = {root: page}
        self._leaves = {}
        seen = {root}
        level = children(root, page, self._page_count) or []
        while level:
            level = [number for number in level if number not in seen]
            seen.update(level)
            if not level or children(level[0], self._page(level[0]), self._page_count) is None:
                break  # the leaves (a sound b-tree has all its leaves at one depth)
            pages = {number: self._page(number) for number in sorted(level)}
            self._interiors.update(pages)
            level = [
                child
                for number in level
                for child in children(number, pages[number], self._page_count) or []
            ]
        step = self._chunk_pages
        self._chunks = [level[i : i + step] for i in range(0, len(level), step)]
        self._chunk_of = {number: i for i, chunk in enumerate(self._chunks) for number in chunk}

    def _gather(self, chunk: int) -> None:
        """The leaves of one chunk, by 1 MiB reads in file order of the spans that hold any."""
        size = self._page_size
        self._leaves = {}
        wanted = sorted(self._chunks[chunk])
        i = 0
        while i < len(wanted):
            start = (wanted[i] - 1) * size // _SCAN_BYTES * _SCAN_BYTES
            end = start + self._read_into(self._scan, start)
            self.large_reads += 1
            if end <= (wanted[i] - 1) * size:
                break  # the file ends here: SQLite's own read will say so
            while i < len(wanted) and (wanted[i] - 1) * size < end:
                offset = (wanted[i] - 1) * size - start
                if offset + size <= end - start:
                    # A copy: a view would keep the whole 1 MiB read alive for one page.
                    self._leaves[wanted[i]] = self._scan[offset : offset + size]
                i += 1

    def _page(self, number: int) -> bytes:
        return self._read_small((number - 1) * self._page_size, self._page_size)

    def _read_small(self, offset: int, amount: int) -> bytes:
        """`amount` bytes at `offset` from a small cache of 64 KiB blocks."""
        index, start = divmod(offset, _SMALL_BYTES)
        if start + amount > _SMALL_BYTES:
            return bytes(super().xRead(amount, offset))
        block = self._small.get(index)
        if block is None:
            if len(self._small) * _SMALL_BYTES >= _SMALL_CACHE_BYTES:
                self._small.popitem(last=False)
            block = self._block[: self._read_into(self._block, index * _SMALL_BYTES)]
            self._small[index] = block
            self.small_reads += 1
        else:
            self._small.move_to_end(index)
        if start + amount > len(block):
            return bytes(super().xRead(amount, offset))  # past the end: SQLite's short read
        return block[start : start + amount]

    def _read_into(self, buffer: mmap.mmap, offset: int) -> int:
        try:
            return os.preadv(self._fd, [buffer], offset)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
            # A file system that opened with O_DIRECT but will not read with it.
            os.close(self._fd)
            self._fd = os.open(self._path, os.O_RDONLY)
            return os.preadv(self._fd, [buffer], offset)


class _PrefetchVFS(apsw.VFS):
    def __init__(self) -> None:
        super().__init__(VFS_NAME, "")

    def xOpen(self, name: apsw.URIFilename | str | None, flags: list[int]) -> apsw.VFSFile:
        if isinstance(name, apsw.URIFilename) and flags[0] & apsw.SQLITE_OPEN_MAIN_DB:
            # A quarter of the memory at hand at most, for the task's other buffers.
            chunk_bytes = min(CHUNK_BYTES, max(8 << 20, memory.available_memory() // 4))
            return _PrefetchingFile(name, flags, chunk_bytes)
        return super().xOpen(name, flags)


_vfs: _PrefetchVFS | None = None
_vfs_lock = threading.Lock()


def _registered() -> _PrefetchVFS:
    global _vfs
    with _vfs_lock:
        if _vfs is None:
            _vfs = _PrefetchVFS()
        return _vfs


def open_for_check(path: Path) -> apsw.Connection:
    """A read-only connection to `path` through the prefetching VFS."""
    _registered()
    return apsw.Connection(
        str(path), flags=apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI, vfs=VFS_NAME
    )


def quick_check_errors(conn: apsw.Connection, limit: int = 5) -> list[str]:
    """What `PRAGMA quick_check` reports; empty when the file is sound."""
    try:
        messages = [str(row[0]) for row in conn.execute(f"PRAGMA quick_check({int(limit)})")]
    except apsw.Error as exc:
        return [str(exc)]
    return [] if messages == ["ok"] else messages


def _open_direct(path: str) -> int:
    with contextlib.suppress(OSError, AttributeError):
        return os.open(path, os.O_RDONLY | os.O_DIRECT)
    return os.open(path, os.O_RDONLY)  # no O_DIRECT here (tmpfs): through the page cache
