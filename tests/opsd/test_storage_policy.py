from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsd import storage_policy as policy
from opsd.metric_catalog import METRICS
from opsd.settings import ConfigError, Settings, load_settings


def test_every_lifecycle_rule_has_a_stable_unique_id(settings: Settings) -> None:
    ids = [
        rule["ID"]
        for kind in policy.BUCKET_KINDS
        for rule in policy.desired_lifecycle_rules(kind, settings)
    ]
    assert len(ids) == len(set(ids))
    assert all(rule_id.startswith("drawing-analysis-") for rule_id in ids)
    for kind in policy.BUCKET_KINDS:
        declared = [r["ID"] for r in policy.desired_lifecycle_rules(kind, settings)]
        assert tuple(declared) == policy.LIFECYCLE_RULE_IDS[kind]


def test_the_policy_follows_the_settings() -> None:
    settings = load_settings(
        backup_glacier_days=30,
        backup_expiry_days=200,
        model_version_expiry_days=14,
        backup_prefix="db",
        environment="prod",
        s3_bucket_drawings="d",
        s3_bucket_models="m",
        s3_bucket_backups="b",
    )
    glacier, expiry, abort = policy.desired_lifecycle_rules("backups", settings)
    assert glacier["Transitions"] == [{"Days": 30, "StorageClass": "GLACIER"}]
    assert glacier["Filter"] == {"Prefix": "db/"}
    assert expiry["Expiration"] == {"Days": 200}
    assert abort["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    assert abort["Filter"] == {"Prefix": "db/"}
    (models,) = policy.desired_lifecycle_rules("models", settings)
    assert models["NoncurrentVersionExpiration"] == {"NoncurrentDays": 14}
    (drawings,) = policy.desired_lifecycle_rules("drawings", settings)
    assert drawings["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert policy.log_group_names(settings) == [
        "/ecs/drawing-analysis-prod/app",
        "/ecs/drawing-analysis-prod/tasks",
    ]
    assert policy.LOG_RETENTION_DAYS == 30


def test_backups_cannot_expire_inside_glaciers_minimum_storage() -> None:
    with pytest.raises(ConfigError, match="BACKUP_EXPIRY_DAYS must be at least"):
        load_settings(backup_glacier_days=90, backup_expiry_days=120)


def test_merging_keeps_unrelated_rules_and_replaces_ours(settings: Settings) -> None:
    desired = policy.desired_lifecycle_rules("backups", settings)
    stale = {**desired[0], "Transitions": [{"Days": 5, "StorageClass": "GLACIER"}]}
    other = {"ID": "tmp-cleanup", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}}

    merged = policy.merge_lifecycle_rules([other, stale], desired)

    assert merged == [other, *desired]


def test_tls_statement_is_added_beside_other_statements() -> None:
    existing = {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ReadForCdn", "Effect": "Allow", "Principal": "*"}],
    }
    once = policy.merge_tls_statement(json.dumps(existing), "b")
    twice = policy.merge_tls_statement(once, "b")

    statements = json.loads(twice)["Statement"]
    assert [s["Sid"] for s in statements] == ["ReadForCdn", policy.TLS_SID]
    assert statements[1]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert statements[1]["Resource"] == ["arn:aws:s3:::b", "arn:aws:s3:::b/*"]


def test_unknown_kind_or_rule_is_refused(settings: Settings) -> None:
    with pytest.raises(ValueError, match="logs: not a bucket kind"):
        policy.desired_lifecycle_rules("logs", settings)
    with pytest.raises(ValueError, match="acl: not a bucket rule"):
        policy.apply_bucket_rule(None, "models", "acl", settings)


def test_metrics_doc_lists_every_catalog_metric() -> None:
    text = (Path(__file__).parents[2] / "docs" / "METRICS.md").read_text()
    missing = [name for name in METRICS if f"| `{name}` |" not in text]
    assert missing == []
