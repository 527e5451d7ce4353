"""The write-once upload of a backup: a low-level multipart upload, a part at a time from
disk, each read whole past the page cache where that pays (part_body).

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
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

import structlog

from opsd.aws import describe_aws_error, error_code
from opsd.results import TaskError
from tasks.backups.checksums import FileDigests, aligned_buffer, uncached_fd

PRECONDITION_FAILED = ("PreconditionFailed", "412", "ConditionalRequestConflict")
CONTENT_TYPE = "application/vnd.sqlite3"
# Parts up to this size are read whole into memory, past the page cache (part_body).
IN_MEMORY_PART_BYTES = 64 << 20


class ObjectExists(Exception):
    """The key was already written: S3 refused the If-None-Match completion (412)."""


class FileSlice(io.RawIOBase):
    """A read-only, seekable window on a file: one part's body, streamed, never buffered."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        super().__init__()
        self._handle = path.open("rb")
        self._offset = offset
        self._length = length
        self._position = 0
        self._handle.seek(offset)

    def __len__(self) -> int:
        return self._length

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        remaining = self._length - self._position
        size = remaining if size is None or size < 0 else min(size, remaining)
        data = self._handle.read(size) if size > 0 else b""
        self._position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def seek(self, position: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._length}[whence]
        self._position = max(0, min(self._length, base + position))
        self._handle.seek(self._offset + self._position)
        return self._position

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        self._handle.close()
        super().close()


@contextlib.contextmanager
def part_body(path: Path, offset: int, length: int) -> Iterator[bytes | FileSlice]:
    """One part's body: its bytes read whole with O_DIRECT, past the page cache, where the
    snapshot is larger than the task's memory (it is no longer cached when it goes up, and
    read back through the cache each page would evict another first), the part small
    enough to hold in memory and the file system allows it (tasks.backups.checksums.uncached_fd);
    else a FileSlice streamed through the cache."""
    if path.stat().st_size < offset + length:
        raise _ended_inside(path, offset, length)
    fd = uncached_fd(path) if length <= IN_MEMORY_PART_BYTES else None
    if fd is None:
        with FileSlice(path, offset, length) as body:
            yield body
        return
    try:
        buffer = aligned_buffer(length)
        with buffer:
            view = memoryview(buffer)
            read = 0
            while read < length and (count := os.preadv(fd, [view[read:]], offset + read)):
                read += count
            data = bytes(view[: min(read, length)])
            view.release()
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise
        data = None  # an unaligned part or device: read through the cache instead
    finally:
        os.close(fd)
    if data is None:
        with FileSlice(path, offset, length) as body:
            yield body
        return
    if len(data) != length:
        raise _ended_inside(path, offset, length)
    yield data


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
        with part_body(path, offset, length) as body:
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
