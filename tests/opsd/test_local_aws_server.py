import json
from types import SimpleNamespace

from moto.iam.access_control import PermissionResult

from opsd.local_aws_server import bucket_permission
from opsd.storage_policy import tls_only_statement

BUCKET = "drawing-analysis-backups-local"


def bucket_with(*statements: dict) -> SimpleNamespace:
    policy = {"Version": "2012-10-17", "Statement": list(statements)}
    return SimpleNamespace(policy=json.dumps(policy).encode())


def test_tls_only_statement_lets_requests_over_tls_through() -> None:
    bucket = bucket_with(tls_only_statement(BUCKET))
    result = bucket_permission(bucket, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/backup-x.db")
    assert result == PermissionResult.NEUTRAL


def test_a_deny_whose_condition_holds_still_denies() -> None:
    statement = {
        **tls_only_statement(BUCKET),
        "Condition": {"Bool": {"aws:SecureTransport": "true"}},
    }
    result = bucket_permission(
        bucket_with(statement), "s3:PutObject", f"arn:aws:s3:::{BUCKET}/backup-x.db"
    )
    assert result == PermissionResult.DENIED


def test_unconditional_deny_denies() -> None:
    statement = {
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:DeleteObject",
        "Resource": f"arn:aws:s3:::{BUCKET}/*",
    }
    bucket = bucket_with(statement)
    assert bucket_permission(bucket, "s3:DeleteObject", f"arn:aws:s3:::{BUCKET}/k") == (
        PermissionResult.DENIED
    )
    assert bucket_permission(bucket, "s3:GetObject", f"arn:aws:s3:::{BUCKET}/k") == (
        PermissionResult.NEUTRAL
    )


def test_no_policy_is_neutral() -> None:
    assert bucket_permission(SimpleNamespace(policy=None), "s3:GetObject", "arn:aws:s3:::b/k") == (
        PermissionResult.NEUTRAL
    )
