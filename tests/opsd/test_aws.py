"""The boto3 client factory."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
from typing import Any

from opsd.aws import AwsClients
from opsd.settings import Settings


def test_s3_bodies_are_checked_by_their_checksum_and_not_hashed_again_to_sign(
    aws: AwsClients, settings: Settings
) -> None:
    s3 = aws("s3")
    bucket = settings.s3_bucket_backups
    sent: dict[str, dict[str, str]] = {}

    def record(request: Any, **kwargs: Any) -> None:
        operation = kwargs["event_name"].rsplit(".", 1)[-1]
        sent[operation] = {
            name.lower(): value.decode() if isinstance(value, bytes) else value
            for name, value in request.headers.items()
        }

    s3.meta.events.register("before-send.s3.*", record)
    body = b"x" * 1024
    checksum = base64.b64encode(hashlib.sha256(body).digest()).decode()
    upload = s3.create_multipart_upload(Bucket=bucket, Key="k", ChecksumAlgorithm="SHA256")
    s3.upload_part(
        Bucket=bucket,
        Key="k",
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=body,
        ChecksumAlgorithm="SHA256",
        ChecksumSHA256=checksum,
    )
    s3.put_object(Bucket=bucket, Key="plain", Body=body)

    assert sent["UploadPart"]["x-amz-checksum-sha256"] == checksum
    assert "UNSIGNED-PAYLOAD" in sent["UploadPart"]["x-amz-content-sha256"]
    put = sent["PutObject"]
    assert "x-amz-checksum-crc32" in put or "crc32" in put.get("x-amz-trailer", "")
    assert "UNSIGNED-PAYLOAD" in put["x-amz-content-sha256"]


def test_making_an_s3_client_does_not_load_awscrt(settings: Settings) -> None:
    """botocore imports awscrt at start where it is installed (its `crt` extra): ~80 ms of
    CPU and 6 MB in every task and app process, for checksums the backups do without."""
    script = (
        "import sys; from opsd.aws import AwsClients; from opsd.settings import Settings; "
        "AwsClients(Settings())('s3'); "
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'awscrt'))"
    )
    env = {**os.environ, "AWS_DEFAULT_REGION": settings.aws_default_region}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
