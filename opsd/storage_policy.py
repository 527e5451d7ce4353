"""The declared storage policy, in one place (ARCHITECTURE §4–5), as plain data in the AWS API
shapes.

Read by `lifecycle-check` (compare), by `lifecycle-check --fix` and local mode (apply, through
`apply_bucket_rule` / `apply_log_retention`), and by the test that holds the CloudFormation
template's buckets and log groups to it. Each lifecycle rule has a stable `ID`, so `--fix`
replaces only its own rules and keeps unrelated ones.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from opsd.aws import error_code
from opsd.settings import Settings

BUCKET_KINDS = ("drawings", "models", "backups")
LOG_RETENTION_DAYS = 30
DRAWINGS_IA_DAYS = 30
ABORT_INCOMPLETE_UPLOAD_DAYS = 1
TLS_SID = "DenyInsecureTransport"

LIFECYCLE_RULE_IDS = {
    "drawings": ("drawing-analysis-drawings-infrequent-access",),
    "models": ("drawing-analysis-models-noncurrent-expiry",),
    "backups": (
        "drawing-analysis-backups-glacier",
        "drawing-analysis-backups-expiry",
        "drawing-analysis-backups-abort-incomplete-uploads",
    ),
}
BASE_RULES = ("versioning", "encryption", "public-access-block", "tls-only")

VERSIONING = {"Status": "Enabled"}
ENCRYPTION = {
    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}],
}
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


def bucket_name(kind: str, settings: Settings) -> str:
    if kind not in BUCKET_KINDS:
        raise ValueError(f"{kind}: not a bucket kind ({', '.join(BUCKET_KINDS)})")
    return str(getattr(settings, f"s3_bucket_{kind}"))


def bucket_rules(kind: str) -> tuple[str, ...]:
    """Every rule name a bucket of `kind` is checked against, in report order."""
    return BASE_RULES + tuple(f"lifecycle:{rule_id}" for rule_id in LIFECYCLE_RULE_IDS[kind])


def backup_key_prefix(settings: Settings) -> str:
    """BACKUP_PREFIX as backup keys use it: '' or 'folder/' (as tasks/backups/store.py)."""
    prefix = settings.backup_prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def log_group_names(settings: Settings) -> list[str]:
    prefix = f"/ecs/drawing-analysis-{settings.environment}"
    return [f"{prefix}/app", f"{prefix}/tasks"]


def desired_lifecycle_rules(kind: str, settings: Settings) -> list[dict[str, Any]]:
    """The lifecycle rules the policy declares for a bucket of `kind`, in the S3 API shape."""
    if kind == "drawings":
        (ia,) = LIFECYCLE_RULE_IDS[kind]
        transition = {"Days": DRAWINGS_IA_DAYS, "StorageClass": "STANDARD_IA"}
        return [_lifecycle_rule(ia, "", Transitions=[transition])]
    if kind == "models":
        (noncurrent,) = LIFECYCLE_RULE_IDS[kind]
        expiry = {"NoncurrentDays": settings.model_version_expiry_days}
        return [_lifecycle_rule(noncurrent, "", NoncurrentVersionExpiration=expiry)]
    if kind == "backups":
        glacier, expiry_id, abort_id = LIFECYCLE_RULE_IDS[kind]
        prefix = backup_key_prefix(settings)
        transition = {"Days": settings.backup_glacier_days, "StorageClass": "GLACIER"}
        expiration = {"Days": settings.backup_expiry_days}
        # The parts of an upload whose task was killed before it could abort it.
        abort = {"DaysAfterInitiation": ABORT_INCOMPLETE_UPLOAD_DAYS}
        return [
            _lifecycle_rule(glacier, prefix, Transitions=[transition]),
            _lifecycle_rule(
                expiry_id,
                prefix,
                Expiration=expiration,
                NoncurrentVersionExpiration={"NoncurrentDays": 1},
            ),
            _lifecycle_rule(abort_id, prefix, AbortIncompleteMultipartUpload=abort),
        ]
    raise ValueError(f"{kind}: not a bucket kind ({', '.join(BUCKET_KINDS)})")


def _lifecycle_rule(rule_id: str, prefix: str, **action: Any) -> dict[str, Any]:
    return {"ID": rule_id, "Status": "Enabled", "Filter": {"Prefix": prefix}, **action}


def tls_only_statement(bucket: str) -> dict[str, Any]:
    return {
        "Sid": TLS_SID,
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


def lifecycle_essentials(rule: dict[str, Any]) -> dict[str, Any]:
    """The parts of a lifecycle rule the policy cares about, in one comparable shape."""
    scope = rule.get("Filter", {})
    prefix = scope.get("Prefix", rule.get("Prefix", "")) if "And" not in scope else None
    essentials: dict[str, Any] = {"Status": rule.get("Status"), "Prefix": prefix}
    if rule.get("Transitions"):
        essentials["Transitions"] = sorted(
            (int(t.get("Days", -1)), str(t.get("StorageClass"))) for t in rule["Transitions"]
        )
    if "Days" in rule.get("Expiration", {}):
        essentials["ExpirationDays"] = int(rule["Expiration"]["Days"])
    if "NoncurrentDays" in rule.get("NoncurrentVersionExpiration", {}):
        essentials["NoncurrentDays"] = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
    if "DaysAfterInitiation" in rule.get("AbortIncompleteMultipartUpload", {}):
        abort = rule["AbortIncompleteMultipartUpload"]
        essentials["AbortIncompleteDays"] = int(abort["DaysAfterInitiation"])
    return essentials


def merge_lifecycle_rules(
    existing: list[dict[str, Any]], desired: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Existing rules with the policy's own rules (same IDs) replaced or added; others kept."""
    ours = {rule["ID"] for rule in desired}
    return [rule for rule in existing if rule.get("ID") not in ours] + desired


def merge_tls_statement(policy_text: str | None, bucket: str) -> str:
    """The bucket policy with the TLS-only statement put in (any other statement kept)."""
    policy = json.loads(policy_text) if policy_text else {"Version": "2012-10-17"}
    statements = policy.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    kept = [s for s in statements if s.get("Sid") != TLS_SID]
    policy["Statement"] = [*kept, tls_only_statement(bucket)]
    return json.dumps(policy)


def current_lifecycle_rules(s3: Any, bucket: str) -> list[dict[str, Any]]:
    try:
        answer = s3.get_bucket_lifecycle_configuration(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) == "NoSuchLifecycleConfiguration":
            return []
        raise
    return list(answer.get("Rules", []))


def current_bucket_policy(s3: Any, bucket: str) -> str | None:
    try:
        return str(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucketPolicy":
            return None
        raise


def apply_bucket_rule(s3: Any, kind: str, rule: str, settings: Settings) -> str:
    """Make one rule of the policy true for the bucket of `kind`; returns what was done."""
    bucket = bucket_name(kind, settings)
    if rule == "versioning":
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=VERSIONING)
        return f"{bucket}: versioning enabled"
    if rule == "encryption":
        s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration=ENCRYPTION)
        return f"{bucket}: default encryption set to AES256"
    if rule == "public-access-block":
        s3.put_public_access_block(
            Bucket=bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK
        )
        return f"{bucket}: all four public-access-block flags set"
    if rule == "tls-only":
        policy = merge_tls_statement(current_bucket_policy(s3, bucket), bucket)
        s3.put_bucket_policy(Bucket=bucket, Policy=policy)
        return f"{bucket}: bucket policy denies requests without TLS"
    if rule.startswith("lifecycle:"):
        rule_id = rule.removeprefix("lifecycle:")
        wanted = [r for r in desired_lifecycle_rules(kind, settings) if r["ID"] == rule_id]
        if not wanted:
            raise ValueError(f"{rule}: not a lifecycle rule of the {kind} bucket")
        merged = merge_lifecycle_rules(current_lifecycle_rules(s3, bucket), wanted)
        s3.put_bucket_lifecycle_configuration(
            Bucket=bucket, LifecycleConfiguration={"Rules": merged}
        )
        return f"{bucket}: lifecycle rule {rule_id} applied ({len(merged)} rules in all)"
    raise ValueError(f"{rule}: not a bucket rule of the storage policy")


def apply_log_retention(logs: Any, name: str) -> str:
    """Set a log group's retention, creating the group only when it is missing (local mode).
    An existing group needs PutRetentionPolicy alone: the tasks role may not create groups,
    which belong to the stack."""
    try:
        logs.put_retention_policy(logGroupName=name, retentionInDays=LOG_RETENTION_DAYS)
        return f"{name}: retention set to {LOG_RETENTION_DAYS} days"
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=LOG_RETENTION_DAYS)
    return f"{name} (created): retention set to {LOG_RETENTION_DAYS} days"
