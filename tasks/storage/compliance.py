"""Compare buckets and log groups with the declared storage policy: one finding per rule."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from opsd import storage_policy as policy
from opsd.aws import describe_aws_error, error_code
from opsd.settings import Settings

OK = "ok"
VIOLATION = "violation"
CANNOT_CHECK = "cannot check"


@dataclass(frozen=True)
class Finding:
    """One resource and one rule of the policy: what is expected, what is there."""

    resource: str
    rule: str
    status: str
    expected: str
    actual: str
    kind: str = ""

    @property
    def fixable(self) -> bool:
        return self.status != OK and self.rule != "exists"


def _versioning(s3: Any, bucket: str, kind: str, settings: Settings) -> tuple[bool, str, str]:
    status = s3.get_bucket_versioning(Bucket=bucket).get("Status", "never enabled")
    return status == "Enabled", "Enabled", str(status)


def _encryption(s3: Any, bucket: str, kind: str, settings: Settings) -> tuple[bool, str, str]:
    try:
        config = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
    except ClientError as exc:
        if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
            raise
        return False, "AES256", "no default encryption"
    algorithms = [
        rule.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "none")
        for rule in config.get("Rules", [])
    ]
    return algorithms == ["AES256"], "AES256", ", ".join(algorithms) or "no rule"


def _public_access_block(
    s3: Any, bucket: str, kind: str, settings: Settings
) -> tuple[bool, str, str]:
    try:
        config = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    except ClientError as exc:
        if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
            raise
        config = {}
    off = [flag for flag in policy.PUBLIC_ACCESS_BLOCK if not config.get(flag)]
    actual = "all four set" if not off else f"not set: {', '.join(off)}"
    return not off, "all four set", actual


def _denies_insecure_transport(statement: dict[str, Any], bucket: str) -> bool:
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    resources = statement.get("Resource", [])
    resources = [resources] if isinstance(resources, str) else resources
    condition = statement.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport")
    return (
        statement.get("Effect") == "Deny"
        and statement.get("Principal") in ("*", {"AWS": "*"})
        and "s3:*" in actions
        and {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"} <= set(resources)
        and str(condition).lower() == "false"
    )


def _tls_only(s3: Any, bucket: str, kind: str, settings: Settings) -> tuple[bool, str, str]:
    expected = "Deny s3:* when aws:SecureTransport is false"
    text = policy.current_bucket_policy(s3, bucket)
    if text is None:
        return False, expected, "no bucket policy"
    statements = json.loads(text).get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    if any(_denies_insecure_transport(s, bucket) for s in statements):
        return True, expected, expected
    return False, expected, f"no such statement among {len(statements)}"


def _describe_rule(essentials: dict[str, Any]) -> str:
    parts = [f"{essentials['Status']}", f"prefix {essentials['Prefix']!r}"]
    for days, storage_class in essentials.get("Transitions", []):
        parts.append(f"{storage_class} after {days} days")
    if "ExpirationDays" in essentials:
        parts.append(f"expire after {essentials['ExpirationDays']} days")
    if "NoncurrentDays" in essentials:
        parts.append(f"old versions expire after {essentials['NoncurrentDays']} days")
    return ", ".join(parts)


def _lifecycle_check(rule_id: str) -> Callable[..., tuple[bool, str, str]]:
    def check(s3: Any, bucket: str, kind: str, settings: Settings) -> tuple[bool, str, str]:
        (wanted,) = [
            r for r in policy.desired_lifecycle_rules(kind, settings) if r["ID"] == rule_id
        ]
        expected = policy.lifecycle_essentials(wanted)
        present = [r for r in policy.current_lifecycle_rules(s3, bucket) if r.get("ID") == rule_id]
        if not present:
            return False, _describe_rule(expected), "rule missing"
        actual = policy.lifecycle_essentials(present[0])
        return actual == expected, _describe_rule(expected), _describe_rule(actual)

    return check


_BASE_CHECKS: dict[str, Callable[..., tuple[bool, str, str]]] = {
    "versioning": _versioning,
    "encryption": _encryption,
    "public-access-block": _public_access_block,
    "tls-only": _tls_only,
}


def _check_for(rule: str) -> Callable[..., tuple[bool, str, str]]:
    if rule.startswith("lifecycle:"):
        return _lifecycle_check(rule.removeprefix("lifecycle:"))
    return _BASE_CHECKS[rule]


def _cannot_check(resource: str, rule: str, kind: str, action: str, exc: Exception) -> Finding:
    return Finding(resource, rule, CANNOT_CHECK, "readable", describe_aws_error(action, exc), kind)


def check_bucket(s3: Any, kind: str, settings: Settings) -> Iterator[Finding]:
    bucket = policy.bucket_name(kind, settings)
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            yield Finding(bucket, "exists", VIOLATION, "bucket exists", "no such bucket", kind)
            return
        if error_code(exc) not in ("403", "AccessDenied", "Forbidden"):
            raise
        # HeadBucket may be denied while the configuration reads are allowed: go on.
    for rule in policy.bucket_rules(kind):
        try:
            good, expected, actual = _check_for(rule)(s3, bucket, kind, settings)
        except (ClientError, BotoCoreError) as exc:
            yield _cannot_check(bucket, rule, kind, f"read {rule} of {bucket}", exc)
            continue
        yield Finding(bucket, rule, OK if good else VIOLATION, expected, actual, kind)


def check_log_group(logs: Any, name: str) -> Finding:
    expected = f"{policy.LOG_RETENTION_DAYS} days"
    try:
        pages = logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name)
        groups = [g for page in pages for g in page["logGroups"] if g["logGroupName"] == name]
    except (ClientError, BotoCoreError) as exc:
        return _cannot_check(name, "retention", "log-group", f"describe log group {name}", exc)
    if not groups:
        return Finding(name, "retention", VIOLATION, expected, "log group missing", "log-group")
    days = groups[0].get("retentionInDays")
    actual = "never expire" if days is None else f"{days} days"
    status = OK if days == policy.LOG_RETENTION_DAYS else VIOLATION
    return Finding(name, "retention", status, expected, actual, "log-group")


def check_everything(s3: Any, logs: Any, settings: Settings) -> list[Finding]:
    findings: list[Finding] = []
    for kind in policy.BUCKET_KINDS:
        findings.extend(check_bucket(s3, kind, settings))
    findings.extend(check_log_group(logs, name) for name in policy.log_group_names(settings))
    return findings


def fix(finding: Finding, s3: Any, logs: Any, settings: Settings) -> str:
    """Apply the policy for one finding (the same code local mode uses to set resources up)."""
    if finding.kind == "log-group":
        return policy.apply_log_retention(logs, finding.resource)
    return policy.apply_bucket_rule(s3, finding.kind, finding.rule, settings)


def planned_change(finding: Finding) -> str:
    if finding.rule == "exists":
        return f"{finding.resource}: cannot be fixed here, create it with the CloudFormation stack"
    return f"{finding.resource}: set {finding.rule} to {finding.expected}"
