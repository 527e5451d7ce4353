from __future__ import annotations

import argparse
import json
from unittest import mock

from botocore.exceptions import ClientError

from opsd import storage_policy as policy
from opsd.aws import AwsClients
from opsd.results import Status
from opsd.settings import Settings
from tasks import lifecycle_check
from tasks.storage.compliance import CANNOT_CHECK, OK, VIOLATION

UNRELATED_RULE = {
    "ID": "someone-elses-tmp-cleanup",
    "Status": "Enabled",
    "Filter": {"Prefix": "tmp/"},
    "Expiration": {"Days": 3},
}


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    lifecycle_check.add_arguments(parser)
    return parser.parse_args(list(argv))


def _run(make_ctx, *argv: str):  # type: ignore[no-untyped-def]
    return lifecycle_check.run(make_ctx("lifecycle-check"), _args(*argv))


def _findings(result) -> list[dict]:  # type: ignore[no-untyped-def]
    return json.loads(result.output)["findings"]


def _apply_whole_policy(aws: AwsClients, settings: Settings) -> None:
    for kind in policy.BUCKET_KINDS:
        for rule in policy.bucket_rules(kind):
            policy.apply_bucket_rule(aws("s3"), kind, rule, settings)
    for name in policy.log_group_names(settings):
        policy.apply_log_retention(aws("logs"), name)


def test_fresh_buckets_violate_every_rule_but_versioning(make_ctx, settings: Settings) -> None:
    result = _run(make_ctx, "--json")

    assert result.status is Status.VIOLATION
    by_key = {(f["resource"], f["rule"]): f for f in _findings(result)}
    drawings = settings.s3_bucket_drawings
    assert by_key[(drawings, "versioning")]["status"] == OK
    assert by_key[(drawings, "public-access-block")]["status"] == VIOLATION
    assert by_key[(drawings, "tls-only")]["actual"] == "no bucket policy"
    glacier = by_key[(settings.s3_bucket_backups, "lifecycle:drawing-analysis-backups-glacier")]
    assert glacier["status"] == VIOLATION
    assert glacier["expected"] == "Enabled, prefix '', GLACIER after 90 days"
    assert glacier["actual"] == "rule missing"
    app_logs = by_key[(f"/ecs/drawing-analysis-{settings.environment}/app", "retention")]
    assert app_logs["actual"] == "log group missing"


def test_one_finding_per_resource_and_rule(make_ctx, settings: Settings) -> None:
    findings = _findings(_run(make_ctx, "--json"))

    keys = [(f["resource"], f["rule"]) for f in findings]
    assert len(keys) == len(set(keys))
    expected = sum(len(policy.bucket_rules(k)) for k in policy.BUCKET_KINDS) + 2
    assert len(findings) == expected


def test_drift_then_fix_then_clean_check_keeps_unrelated_rule(
    make_ctx, aws: AwsClients, settings: Settings
) -> None:
    _apply_whole_policy(aws, settings)
    s3 = aws("s3")
    backups = settings.s3_bucket_backups
    drifted = [dict(r) for r in policy.desired_lifecycle_rules("backups", settings)]
    drifted[0]["Transitions"] = [{"Days": 30, "StorageClass": "GLACIER"}]
    s3.put_bucket_lifecycle_configuration(
        Bucket=backups, LifecycleConfiguration={"Rules": [*drifted, UNRELATED_RULE]}
    )
    s3.delete_public_access_block(Bucket=settings.s3_bucket_models)
    aws("logs").put_retention_policy(
        logGroupName=policy.log_group_names(settings)[1], retentionInDays=7
    )

    drift = _run(make_ctx, "--json")
    bad = {(f["resource"], f["rule"]) for f in _findings(drift) if f["status"] != OK}
    assert bad == {
        (backups, "lifecycle:drawing-analysis-backups-glacier"),
        (settings.s3_bucket_models, "public-access-block"),
        (policy.log_group_names(settings)[1], "retention"),
    }
    assert drift.exit_code == 3

    fixed = _run(make_ctx, "--fix", "--json")
    assert fixed.status is Status.OK
    assert len(json.loads(fixed.output)["changes"]) == 3

    clean = _run(make_ctx)
    assert clean.status is Status.OK
    assert "0 violations" in clean.output
    rules = {r["ID"]: r for r in policy.current_lifecycle_rules(s3, backups)}
    assert rules["someone-elses-tmp-cleanup"]["Expiration"]["Days"] == 3
    assert rules["drawing-analysis-backups-glacier"]["Transitions"][0]["Days"] == 90


def test_fix_dry_run_changes_nothing(make_ctx, aws: AwsClients, settings: Settings) -> None:
    before = _findings(_run(make_ctx, "--json"))

    result = _run(make_ctx, "--fix", "--dry-run")

    assert result.status is Status.VIOLATION
    assert "changes that --fix would make:" in result.output
    assert f"{settings.s3_bucket_drawings}: set encryption to AES256" in result.output
    assert _findings(_run(make_ctx, "--json")) == before


def test_access_denied_on_one_bucket_is_a_finding_and_the_run_goes_on(
    make_ctx, aws: AwsClients, settings: Settings
) -> None:
    _apply_whole_policy(aws, settings)
    s3 = aws("s3")
    real = s3.get_bucket_encryption
    denied = ClientError(
        {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "GetBucketEncryption"
    )

    def guarded(**kwargs):  # type: ignore[no-untyped-def]
        if kwargs["Bucket"] == settings.s3_bucket_models:
            raise denied
        return real(**kwargs)

    with mock.patch.object(s3, "get_bucket_encryption", side_effect=guarded):
        result = _run(make_ctx, "--json")

    findings = _findings(result)
    not_ok = [f for f in findings if f["status"] != OK]
    assert [(f["resource"], f["rule"], f["status"]) for f in not_ok] == [
        (settings.s3_bucket_models, "encryption", CANNOT_CHECK)
    ]
    assert "AccessDenied" in not_ok[0]["actual"]
    assert result.exit_code == 3


def test_terminal_report_says_expected_and_found(make_ctx, settings: Settings) -> None:
    result = _run(make_ctx)

    line = next(
        x
        for x in result.output.splitlines()
        if settings.s3_bucket_drawings in x and "encryption" in x
    )
    assert line.startswith("VIOLATION")
    assert "expected AES256; found no default encryption" in line
    assert "run with --fix" in result.output


def test_publishes_lifecycle_violations(make_ctx, aws: AwsClients, settings: Settings) -> None:
    _apply_whole_policy(aws, settings)
    aws("s3").delete_bucket_policy(Bucket=settings.s3_bucket_drawings)

    _run(make_ctx)

    stats = aws("cloudwatch").get_metric_statistics(
        Namespace=settings.metrics_namespace,
        MetricName="LifecycleViolations",
        Dimensions=[{"Name": "Environment", "Value": settings.environment}],
        StartTime="2000-01-01T00:00:00Z",
        EndTime="2100-01-01T00:00:00Z",
        Period=60,
        Statistics=["Maximum"],
    )
    assert [p["Maximum"] for p in stats["Datapoints"]] == [1.0]
