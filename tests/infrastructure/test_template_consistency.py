"""The template agrees with the code: settings, schedule table, metric catalog, storage policy,
least-privilege IAM, tags, and the single-writer deployment of the app."""

from __future__ import annotations

import json
from pathlib import PurePosixPath
from typing import Any

import pytest

from app.settings import AppSettings
from opsd import storage_policy
from opsd.metric_catalog import METRICS
from opsd.settings import Settings, load_settings
from tasks.registry import SCHEDULED, TASKS
from tests.infrastructure.cfn_model import (
    Resolver,
    container,
    container_variables,
)

IMAGES = {"AppTaskDefinition": AppSettings, "TasksTaskDefinition": Settings}
# What production must set explicitly, whatever the settings' defaults are.
MUST_SET = {
    "common": {
        "ENVIRONMENT",
        "AWS_DEFAULT_REGION",
        "S3_BUCKET_DRAWINGS",
        "S3_BUCKET_MODELS",
        "S3_BUCKET_BACKUPS",
        "DATABASE_PATH",
        "OPS_STATE_PATH",
        "SCRATCH_DIR",
        "METRICS_NAMESPACE",
        "ENABLE_METRICS",
        "LOG_FORMAT",
        "BACKUP_PREFIX",
    },
    "AppTaskDefinition": {
        "ENABLE_SECRETS_MANAGER",
        "ADMIN_PASSWORD_SECRET_ARN",
        "SESSION_SECRET",
        "APP_HOST",
        "APP_PORT",
    },
    "TasksTaskDefinition": {
        "BUDGET_NAME",
        "BUDGET_LIMIT_USD",
        "ALERT_TOPIC_ARN",
        "ECS_CLUSTER",
        "ECS_APP_SERVICE",
        "BACKUP_GLACIER_DAYS",
        "BACKUP_EXPIRY_DAYS",
        "MODEL_VERSION_EXPIRY_DAYS",
    },
}
REQUIRED_TAGS = {"Environment", "Project", "Owner"}


@pytest.fixture
def resolver() -> Resolver:
    return Resolver()


def settings_of(resolver: Resolver, task_definition: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for name, value in container_variables(resolver, task_definition).items():
        monkeypatch.setenv(name, value)
    return load_settings(IMAGES[task_definition])


@pytest.mark.parametrize("task_definition", sorted(IMAGES))
def test_every_container_variable_is_a_setting_of_its_image(
    resolver: Resolver, task_definition: str
) -> None:
    known = {name.upper() for name in IMAGES[task_definition].model_fields}
    unknown = set(container_variables(resolver, task_definition)) - known
    assert not unknown, f"{task_definition} sets variables its image never reads: {unknown}"


@pytest.mark.parametrize("task_definition", sorted(IMAGES))
def test_required_settings_are_set_and_valid(
    resolver: Resolver, task_definition: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    variables = container_variables(resolver, task_definition)
    required = {
        name.upper()
        for name, field in IMAGES[task_definition].model_fields.items()
        if field.is_required()
    }
    missing = (MUST_SET["common"] | MUST_SET[task_definition] | required) - set(variables)
    assert not missing, f"{task_definition} does not set {sorted(missing)}"
    settings = settings_of(resolver, task_definition, monkeypatch)
    assert not settings.is_local


@pytest.mark.parametrize("task_definition", sorted(IMAGES))
def test_database_and_scratch_paths_are_on_mounted_volumes(
    resolver: Resolver, task_definition: str
) -> None:
    definition = container(resolver, task_definition)
    assert definition["ReadonlyRootFilesystem"] is True
    volumes = {v["Name"]: v for v in resolver.properties(task_definition)["Volumes"]}
    mounts = {m["ContainerPath"]: volumes[m["SourceVolume"]] for m in definition["MountPoints"]}
    variables = container_variables(resolver, task_definition)

    def volume_of(path: str) -> dict[str, Any]:
        parent = str(PurePosixPath(path).parent) if "." in PurePosixPath(path).name else path
        assert parent in mounts, f"{path} is not on a mounted volume ({sorted(mounts)})"
        return mounts[parent]

    for variable in ("DATABASE_PATH", "OPS_STATE_PATH"):
        volume = volume_of(variables[variable])
        efs = volume.get("EFSVolumeConfiguration", {})
        assert efs.get("FilesystemId") == "<ref:FileSystem>", f"{variable} is not on EFS"
        assert efs.get("TransitEncryption") == "ENABLED"
    assert "EFSVolumeConfiguration" not in volume_of(variables["SCRATCH_DIR"])


def test_app_and_tasks_share_one_database_path(resolver: Resolver) -> None:
    app = container_variables(resolver, "AppTaskDefinition")
    tasks = container_variables(resolver, "TasksTaskDefinition")
    for variable in ("DATABASE_PATH", "OPS_STATE_PATH", "S3_BUCKET_BACKUPS", "BACKUP_PREFIX"):
        assert app[variable] == tasks[variable], variable


def schedules(resolver: Resolver) -> dict[str, dict[str, Any]]:
    found = {}
    for name, resource in resolver.resources("AWS::Scheduler::Schedule").items():
        target = resource["Properties"]["Target"]
        (override,) = json.loads(target["Input"])["containerOverrides"]
        (task,) = override["command"]
        assert task not in found, f"two schedules run {task}"
        found[task] = {**resource["Properties"], "container": override["name"], "id": name}
    return found


def test_schedules_equal_the_schedule_table(resolver: Resolver) -> None:
    found = schedules(resolver)
    assert set(found) == set(SCHEDULED), "schedules differ from tasks/registry.py SCHEDULED"
    for task, schedule in found.items():
        assert schedule["ScheduleExpression"] == SCHEDULED[task].schedule, task
        assert schedule["ScheduleExpressionTimezone"] == "UTC"
    on_demand = set(TASKS) - set(SCHEDULED)
    assert on_demand == {"restore"}, "an on-demand task other than restore needs a decision"


def test_schedules_start_the_tasks_container_with_retries_and_a_dead_letter_queue(
    resolver: Resolver,
) -> None:
    (tasks_container,) = resolver.properties("TasksTaskDefinition")["ContainerDefinitions"]
    for task, schedule in schedules(resolver).items():
        target = schedule["Target"]
        assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}, task
        assert schedule["container"] == tasks_container["Name"], task
        assert target["EcsParameters"]["TaskDefinitionArn"] == "<ref:TasksTaskDefinition>"
        assert target["Arn"] == "<att:Cluster.Arn>"
        assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1, task
        assert target["DeadLetterConfig"]["Arn"] == "<att:ScheduleDeadLetterQueue.Arn>", task


def custom_metrics(node: Any, namespace: str) -> list[tuple[str, tuple[str, ...]]]:
    """(metric name, dimension names) of every custom-namespace metric in an alarm or widget."""
    found = []
    if isinstance(node, dict):
        if node.get("Namespace") == namespace and "MetricName" in node:
            dimensions = tuple(sorted(d["Name"] for d in node.get("Dimensions", [])))
            found.append((node["MetricName"], dimensions))
        for value in node.values():
            found += custom_metrics(value, namespace)
    elif isinstance(node, list):
        if len(node) >= 2 and node[0] == namespace and isinstance(node[1], str):
            labels = [part for part in node[2:] if isinstance(part, str)]
            found.append((node[1], tuple(sorted(labels[0::2]))))
        for value in node:
            found += custom_metrics(value, namespace)
    return found


def test_alarms_and_dashboard_use_only_catalog_metrics_with_their_dimensions(
    resolver: Resolver,
) -> None:
    namespace = resolver.parameters["MetricsNamespace"]
    alarms = resolver.resources("AWS::CloudWatch::Alarm")
    (dashboard,) = resolver.resources("AWS::CloudWatch::Dashboard").values()
    body = json.loads(dashboard["Properties"]["DashboardBody"])
    used = custom_metrics([a["Properties"] for a in alarms.values()], namespace)
    used += custom_metrics(body, namespace)
    assert len(used) > 20, "found too few custom metrics: did the template's shape change?"
    for name, dimensions in used:
        assert name in METRICS, f"{name} is not in opsd/metric_catalog.py"
        assert dimensions == tuple(sorted(METRICS[name].dimensions)), (name, dimensions)
    assert {name for name, _ in used} == set(METRICS), "catalog metrics missing from the dashboard"


def test_required_alarms_exist(resolver: Resolver) -> None:
    alarms = {
        a["Properties"].get("MetricName"): a["Properties"]
        for a in resolver.resources("AWS::CloudWatch::Alarm").values()
    }
    backup_age = alarms["BackupAgeSeconds"]
    assert backup_age["TreatMissingData"] == "breaching"
    assert backup_age["Threshold"] == 7 * 3600
    assert alarms["RestoreDrillFailed"]["ComparisonOperator"] == "GreaterThanThreshold"
    for metric in ("CPUUtilization", "MemoryUtilization"):
        assert alarms[metric]["Threshold"] == 80
        assert alarms[metric]["Period"] * alarms[metric]["EvaluationPeriods"] == 600
    latency = alarms["TargetResponseTime"]
    assert (latency["Threshold"], latency["Period"] * latency["EvaluationPeriods"]) == (5, 600)
    (task_failed,) = [
        a
        for a in alarms.values()
        if "Metrics" in a
        and any(
            m.get("MetricStat", {}).get("Metric", {}).get("MetricName") == "TaskFailed"
            for m in a["Metrics"]
        )
    ]
    covered = {
        d["Value"]
        for m in task_failed["Metrics"]
        if "MetricStat" in m
        for d in m["MetricStat"]["Metric"]["Dimensions"]
        if d["Name"] == "Task"
    }
    assert covered == set(TASKS), "the TaskFailed alarm must watch every task"


OVERRIDES = [
    {},
    {
        "BackupGlacierDays": "30",
        "BackupExpiryDays": "200",
        "BackupPrefix": "db/",
        "ModelVersionExpiryDays": "14",
    },
]


def template_lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API shape the storage policy uses."""
    converted: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "Transitions" in rule:
        converted["Transitions"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
            for t in rule["Transitions"]
        ]
    if "ExpirationInDays" in rule:
        converted["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    if "NoncurrentVersionExpiration" in rule:
        days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    return converted


@pytest.mark.parametrize("overrides", OVERRIDES, ids=["defaults", "overridden"])
def test_buckets_follow_the_storage_policy(
    overrides: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    resolver = Resolver(overrides)
    settings = settings_of(resolver, "TasksTaskDefinition", monkeypatch)
    policies = {
        p["Properties"]["Bucket"]: p["Properties"]["PolicyDocument"]
        for p in resolver.resources("AWS::S3::BucketPolicy").values()
    }
    for kind in storage_policy.BUCKET_KINDS:
        logical = f"{kind.capitalize()}Bucket"
        bucket = resolver.properties(logical)
        assert storage_policy.bucket_name(kind, settings) == f"<ref:{logical}>"
        assert bucket["VersioningConfiguration"] == storage_policy.VERSIONING
        (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        (wanted,) = storage_policy.ENCRYPTION["Rules"]
        assert (
            encryption["ServerSideEncryptionByDefault"]
            == wanted["ApplyServerSideEncryptionByDefault"]
        )
        assert bucket["PublicAccessBlockConfiguration"] == storage_policy.PUBLIC_ACCESS_BLOCK
        rules = {
            r["Id"]: template_lifecycle_rule(r) for r in bucket["LifecycleConfiguration"]["Rules"]
        }
        for desired in storage_policy.desired_lifecycle_rules(kind, settings):
            assert desired["ID"] in rules, f"{logical} lacks lifecycle rule {desired['ID']}"
            assert storage_policy.lifecycle_essentials(rules[desired["ID"]]) == (
                storage_policy.lifecycle_essentials(desired)
            ), desired["ID"]
        tls = [
            s
            for s in policies[f"<ref:{logical}>"]["Statement"]
            if s.get("Sid") == storage_policy.TLS_SID
        ]
        expected = storage_policy.tls_only_statement("x")
        assert len(tls) == 1, f"{logical} has no TLS-only statement"
        assert {k: v for k, v in tls[0].items() if k != "Resource"} == {
            k: v for k, v in expected.items() if k != "Resource"
        }
        assert sorted(tls[0]["Resource"]) == [f"<att:{logical}.Arn>", f"<att:{logical}.Arn>/*"]


def test_log_groups_follow_the_storage_policy(
    resolver: Resolver, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_of(resolver, "TasksTaskDefinition", monkeypatch)
    groups = {
        g["Properties"]["LogGroupName"]: g["Properties"]
        for g in resolver.resources("AWS::Logs::LogGroup").values()
    }
    for name in storage_policy.log_group_names(settings):
        assert name in groups, f"log group {name} of the storage policy is not in the template"
        assert groups[name]["RetentionInDays"] == storage_policy.LOG_RETENTION_DAYS
    for task_definition in IMAGES:
        options = container(resolver, task_definition)["LogConfiguration"]["Options"]
        group_ref = options["awslogs-group"].removeprefix("<ref:").rstrip(">")
        assert resolver.properties(group_ref)["LogGroupName"] in storage_policy.log_group_names(
            settings
        )
