from __future__ import annotations

import base64
import errno
import hashlib
import os
import threading
import time
from pathlib import Path

import pytest
from crc32c import crc32c

import tasks.backups.checksums as checksums
import tasks.backups.memory as memory_module
from tasks.backups.checksums import CopyDigests, path_digests

PART = 5 << 20
CHUNK = 1 << 20


def _copy_slowly(data: bytes, path: Path, hashing: CopyDigests, stop_at: int | None = None) -> None:
    """What the snapshot's copy does: write, then tell; here slowly enough that a reader
    that did not wait would find the file short."""
    with path.open("r+b") as out:
        hashing.copy_started(path, len(data))
        try:
            for offset in range(0, stop_at if stop_at is not None else len(data), CHUNK):
                time.sleep(0.01)
                out.write(data[offset : offset + CHUNK])
                out.flush()
                hashing.copied(min(offset + CHUNK, len(data)))
        finally:
            hashing.copy_ended()


def _copy_at_once(data: bytes, path: Path, hashing: CopyDigests) -> None:
    """The whole copy written before the hashing thread can catch up."""
    with path.open("r+b") as out:
        hashing.copy_started(path, len(data))
        out.write(data)
        out.flush()
        hashing.copied(len(data))
        hashing.copy_ended()


def _record_steps(monkeypatch: pytest.MonkeyPatch, delay_s: float = 0.0) -> list[tuple[int, int]]:
    """(thread niceness, thread id) of every chunk hashed."""
    steps: list[tuple[int, int]] = []
    real_step = checksums.DigestPass.step

    def step(self: checksums.DigestPass, *args: object) -> None:
        steps.append(
            (os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), threading.get_ident())
        )
        time.sleep(delay_s)
        real_step(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(checksums.DigestPass, "step", step)
    return steps


def test_a_file_hashed_while_it_is_copied_has_the_digests_of_the_file_at_rest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(12 * CHUNK + 12345)
    path = tmp_path / "copy.db"
    path.touch()
    steps = _record_steps(monkeypatch)
    hashing = CopyDigests(PART)
    _copy_slowly(data, path, hashing)
    digests = hashing.result(path)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    behind_the_copy = [nice for nice, thread in steps if thread != threading.get_ident()]
    assert behind_the_copy and set(behind_the_copy) == {ours + 10}  # below the copy's
    assert digests == path_digests(path, PART)


def test_what_is_left_to_hash_once_the_copy_is_whole_is_hashed_at_the_callers_priority(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(12 * CHUNK + 12345)
    path = tmp_path / "copy.db"
    path.touch()
    steps = _record_steps(monkeypatch, delay_s=0.02)  # hashing slower than the copy
    hashing = CopyDigests(PART)
    _copy_at_once(data, path, hashing)
    digests = hashing.result(path)
    ours = os.getpriority(os.PRIO_PROCESS, 0)
    by_caller = [nice for nice, thread in steps if thread == threading.get_ident()]
    assert by_caller and set(by_caller) == {ours}
    assert digests == path_digests(path, PART)


def test_a_copy_that_ends_early_fails_its_hashing(tmp_path: Path) -> None:
    path = tmp_path / "copy.db"
    path.touch()
    hashing = CopyDigests(PART)
    _copy_slowly(os.urandom(8 * CHUNK), path, hashing, stop_at=3 * CHUNK)
    with pytest.raises(OSError, match=f"hashing {path} failed: file ended at byte"):
        hashing.result(path)


def test_a_copy_never_followed_is_hashed_at_rest(tmp_path: Path) -> None:
    path = tmp_path / "copy.db"
    path.write_bytes(os.urandom(3 * CHUNK))
    assert CopyDigests(PART).result(path) == path_digests(path, PART)


def test_every_byte_is_read_once_for_the_sha256_and_the_part_checksums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(11 * CHUNK + 7)
    path = tmp_path / "copy.db"
    path.write_bytes(data)
    real_preadv = os.preadv
    read: list[int] = []

    def counting(fd: int, buffers: list[memoryview], offset: int) -> int:
        count = real_preadv(fd, buffers, offset)
        read.append(count)
        return count

    monkeypatch.setattr(checksums.os, "preadv", counting)
    digests = path_digests(path, PART)
    assert sum(read) == len(data)
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.part_crcs == tuple(crc32c(data[i : i + PART]) for i in range(0, len(data), PART))


def test_the_part_checksum_is_crc32c(tmp_path: Path) -> None:
    """The check value of CRC-32C (Castagnoli), independent of the library computing it."""
    path = tmp_path / "check.txt"
    path.write_bytes(b"123456789")
    assert path_digests(path, PART).part_crcs == (0xE3069283,)
    assert checksums.FileDigests.algorithm == "CRC32C"


def test_the_parts_carry_crc32c_and_s3s_composite_of_them(tmp_path: Path) -> None:
    data = os.urandom(2 * PART + 3)
    path = tmp_path / "copy.db"
    path.write_bytes(data)
    with path.open("rb") as handle:
        digests = checksums.file_digests(handle.fileno(), len(data), PART)
    parts = [crc32c(data[i : i + PART]) for i in range(0, len(data), PART)]
    assert digests.part_crcs == tuple(parts)
    assert digests.checksum_type == "COMPOSITE"
    assert digests.part_checksum(2) == base64.b64encode(parts[2].to_bytes(4, "big")).decode()
    joined = b"".join(crc.to_bytes(4, "big") for crc in parts)
    composite = base64.b64encode(crc32c(joined).to_bytes(4, "big")).decode()
    assert digests.object_checksum() == f"{composite}-3"


def _record_opens(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(path, flags) of every os.open."""
    opened: list[tuple[str, int]] = []
    real_open = os.open

    def record(path: str | Path, flags: int, *args: object, **kwargs: object) -> int:
        opened.append((str(path), flags))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", record)
    return opened


@pytest.mark.parametrize(
    ("memory", "past_the_cache"),
    [(1, True), (2, False)],
    ids=["larger-than-memory", "fits-in-memory"],
)
def test_what_is_left_to_hash_once_the_copy_is_whole_is_read_past_the_cache_if_it_does_not_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, memory: int, past_the_cache: bool
) -> None:
    """A copy larger than the task's memory is no longer cached when the hashing catches
    up: read back through the cache, every page would evict another first. One that fits
    is still cached, and O_DIRECT would first write it out to disk (issue 15)."""
    data = os.urandom(12 * CHUNK + 12345)
    path = tmp_path / "copy.db"
    path.touch()
    monkeypatch.setattr(memory_module, "available_memory", lambda: memory * len(data))
    _record_steps(monkeypatch, delay_s=0.02)
    opened = _record_opens(monkeypatch)
    hashing = CopyDigests(PART)
    _copy_at_once(data, path, hashing)
    assert hashing.result(path) == path_digests(path, PART)
    if not past_the_cache:
        assert opened and not any(flags & os.O_DIRECT for _, flags in opened)
    elif checksums.uncached_fd(path) is None:
        pytest.skip(f"{tmp_path} does not support O_DIRECT")
    else:
        assert (str(path), os.O_RDONLY | os.O_DIRECT) in opened


def test_where_the_file_system_refuses_o_direct_the_rest_is_read_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = os.urandom(12 * CHUNK + 12345)
    path = tmp_path / "copy.db"
    path.touch()
    _record_steps(monkeypatch, delay_s=0.02)
    real_open = os.open

    def like_tmpfs(path: str | Path, flags: int, *args: object, **kwargs: object) -> int:
        if flags & os.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", like_tmpfs)
    hashing = CopyDigests(PART)
    _copy_at_once(data, path, hashing)
    assert hashing.result(path) == path_digests(path, PART)
