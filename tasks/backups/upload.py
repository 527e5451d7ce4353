"""The write-once upload of a backup: a low-level multipart upload, a part at a time from
disk, each read whole past the page cache where that pays (PartReader).

boto3's managed transfer refuses IfNoneMatch, so parts go up one by one, each with the
checksum computed from the snapshot when it was taken (tasks.backups.checksums), which S3 verifies
before it accepts the part; the object only comes into being at
`complete_multipart_upload(IfNoneMatch="*")`. On any failure, SIGTERM included, the multipart
upload is aborted: no object, no stray parts.
"""

from __future__ import annotations

import contextlib
import errno
import io
import mmap
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import structlog

from opsd.aws import describe_aws_error, error_code
from opsd.results import TaskError
from tasks.backups import memory
from tasks.backups.checksums import DIRECT_ALIGNMENT, FileDigests, aligned_buffer, uncached_fd

PRECONDITION_FAILED = ("PreconditionFailed", "412", "ConditionalRequestConflict")
CONTENT_TYPE = "application/vnd.sqlite3"


class ObjectExists(Exception):
    """The key was already written: S3 refused the If-None-Match completion (412)."""


class _Window(io.RawIOBase):
    """A read-only, seekable window of `length` bytes: one part's body as botocore reads it,
    a block at a time, and rewinds it to send it again."""

    def __init__(self, length: int) -> None:
        super().__init__()
        self._length = length
        self._position = 0

    def _read_at(self, position: int, size: int) -> bytes:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        remaining = self._length - self._position
        size = remaining if size is None or size < 0 else min(size, remaining)
        data = self._read_at(self._position, size) if size > 0 else b""
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, min(self._length, base + position))
        return self._position

    def tell(self) -> int:
        return self._position


class FileSlice(_Window):
    """A part streamed from the file, never buffered whole."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        super().__init__(length)
        self._offset = offset
        self._fd = -1  # first: close() runs on a failed open too
        self._fd = os.open(path, os.O_RDONLY)

    def _read_at(self, position: int, size: int) -> bytes:
        return os.pread(self._fd, size, self._offset + position)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        super().close()


class BufferSlice(_Window):
    """A part already read whole into `buffer`, handed out a copied block at a time, so
    that no view of the buffer outlives the part."""

    def __init__(self, buffer: mmap.mmap, length: int) -> None:
        super().__init__(length)
        self._view = memoryview(buffer)[:length]

    def _read_at(self, position: int, size: int) -> bytes:
        return bytes(self._view[position : position + size])

    def close(self) -> None:
        self._view.release()
        super().close()


class PartReader:
    """The bodies of one file's parts as the upload threads send them. Where the file is
    larger than the memory at hand, a part is read whole with O_DIRECT, past the page
    cache: the file is no longer cached when it goes up, and read back through the cache
    each page would evict another first. Each thread reads into one buffer of its own,
    reused part after part: a new 16 MB buffer per part, and a copy of it for botocore,
    cost 0.9 CPU s per GB in page faults (benchmarks/RESULTS.md, issue 15). Else, or where
    one buffer per thread would take more than a quarter of the memory at hand (the check
    running alongside takes up to another quarter) or the file system refuses O_DIRECT
    (tasks.backups.checksums.uncached_fd), a part is streamed through the cache."""

    def __init__(self, path: Path, part_size: int, threads: int = 1) -> None:
        self._path = path
        self._part_size = part_size
        self._buffered = part_size * threads <= memory.available_memory() // 4
        self._local = threading.local()
        self._buffers: list[mmap.mmap] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def body(self, offset: int, length: int) -> Iterator[_Window]:
        if self._path.stat().st_size < offset + length:
            raise _ended_inside(self._path, offset, length)
        fd = uncached_fd(self._path) if self._buffered else None
        if fd is not None:
            buffer = self._take_buffer()
            try:
                if _read_whole(fd, buffer, self._path, offset, length):
                    with BufferSlice(buffer, length) as body:
                        yield body
                    return
            finally:
                self._local.free.append(buffer)
        with FileSlice(self._path, offset, length) as body:
            yield body

    def close(self) -> None:
        with self._lock:
            for buffer in self._buffers:
                buffer.close()
            self._buffers.clear()

    def _take_buffer(self) -> mmap.mmap:
        """One of this thread's free buffers, or a new one."""
        free: list[mmap.mmap] = self._local.__dict__.setdefault("free", [])
        if free:
            return free.pop()
        buffer = aligned_buffer(self._part_size)
        with self._lock:
            self._buffers.append(buffer)
        return buffer


def _read_whole(fd: int, buffer: mmap.mmap, path: Path, offset: int, length: int) -> bool:
    """Read `length` bytes at `offset` of `path` into `buffer` through `fd` (O_DIRECT: whole aligned
    blocks, only the file's end reads short), then close `fd`; False where the part or the
    device is not aligned as O_DIRECT needs."""
    end = min(-(-length // DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT, len(buffer))
    read = 0
    try:
        with memoryview(buffer) as view:
            while read < length and (count := os.preadv(fd, [view[read:end]], offset + read)):
                read += count
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        return False
    finally:
        os.close(fd)
    if read < length:
        raise _ended_inside(path, offset, length)
    return True


def _ended_inside(path: Path, offset: int, length: int) -> OSError:
    return OSError(errno.EIO, f"{path} ended inside the part at {offset} (+{length} bytes)")


def upload_once(
    s3: Any,
    bucket: str,
    key: str,
    path: Path,
    digests: FileDigests,
    metadata: Mapping[str, str],
    *,
    concurrency: int = 4,
    check_stop: Callable[[], None] = lambda: None,
    before_complete: Callable[[], None] = lambda: None,
) -> None:
    """Upload `path` to `key` unless the key exists; raise ObjectExists if it does.

    `before_complete` runs once every part is up; raising there aborts the upload."""
    try:
        created = s3.create_multipart_upload(
            Bucket=bucket,
            Key=key,
            Metadata=dict(metadata),
            ContentType=CONTENT_TYPE,
            ServerSideEncryption="AES256",
            ChecksumAlgorithm=digests.algorithm,
            ChecksumType=digests.checksum_type,
        )
    except Exception as exc:
        raise TaskError(describe_aws_error(f"upload {key}", exc)) from exc
    upload_id = created["UploadId"]
    completed = False
    try:
        parts = _upload_parts(s3, bucket, key, upload_id, path, digests, concurrency, check_stop)
        check_stop()
        before_complete()
        try:
            s3.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                ChecksumType=digests.checksum_type,
                MpuObjectSize=digests.size,
                IfNoneMatch="*",
            )
        except Exception as exc:
            if error_code(exc) in PRECONDITION_FAILED:
                raise ObjectExists(key) from exc
            raise TaskError(describe_aws_error(f"complete upload of {key}", exc)) from exc
        completed = True
    finally:
        if not completed:
            _abort(s3, bucket, key, upload_id)


def _upload_parts(
    s3: Any,
    bucket: str,
    key: str,
    upload_id: str,
    path: Path,
    digests: FileDigests,
    concurrency: int,
    check_stop: Callable[[], None],
) -> list[dict[str, Any]]:
    cancelled = threading.Event()

    def send(index: int) -> dict[str, Any]:
        if cancelled.is_set():
            raise TaskError(f"upload {key}: cancelled")
        offset = index * digests.part_size
        length = min(digests.part_size, digests.size - offset)
        checksum = {f"Checksum{digests.algorithm}": digests.part_checksum(index)}
        with reader.body(offset, length) as body:
            try:
                response = s3.upload_part(
                    Bucket=bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=index + 1,
                    Body=body,
                    ContentLength=length,
                    ChecksumAlgorithm=digests.algorithm,
                    **checksum,
                )
            except Exception as exc:
                action = f"upload {key} part {index + 1}/{digests.part_count}"
                raise TaskError(describe_aws_error(action, exc)) from exc
        return {"PartNumber": index + 1, "ETag": response["ETag"], **checksum}

    reader = PartReader(path, digests.part_size, concurrency)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="upload-part")
    try:
        futures: list[Future[dict[str, Any]]] = [
            pool.submit(send, index) for index in range(digests.part_count)
        ]
        pending = set(futures)
        while pending:
            check_stop()
            done, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
            for future in done:
                future.result()
        return [future.result() for future in futures]
    finally:
        cancelled.set()
        pool.shutdown(wait=True, cancel_futures=True)
        reader.close()


def _abort(s3: Any, bucket: str, key: str, upload_id: str) -> None:
    try:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:
        structlog.get_logger().warning(
            "multipart upload not aborted",
            bucket=bucket,
            key=key,
            upload_id=upload_id,
            error=describe_aws_error("abort", exc),
        )
