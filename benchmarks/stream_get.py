"""The fair restore floor: one streaming GET of an object into a file.

`python -m benchmarks.stream_get BUCKET KEY OUT` — a single `get_object` read in 1 MiB
chunks, no ranged parts, no checks. moto reads the whole object for every ranged GET, so
this, not a ranged download, is what a download costs on the local endpoint
(benchmarks/README.md). The endpoint and keys come from the environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

import boto3

CHUNK_BYTES = 1024 * 1024


def stream_object(bucket: str, key: str, out: Path) -> int:
    body = boto3.client("s3").get_object(Bucket=bucket, Key=key)["Body"]
    written = 0
    with out.open("wb") as handle:
        for chunk in body.iter_chunks(CHUNK_BYTES):
            handle.write(chunk)
            written += len(chunk)
    return written


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: python -m benchmarks.stream_get BUCKET KEY OUT", file=sys.stderr)
        return 2
    bucket, key, out = argv
    stream_object(bucket, key, Path(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
