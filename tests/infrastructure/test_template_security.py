"""The template's IAM is least privilege, the backups cannot be deleted by the containers,
every taggable resource is tagged, and the app never runs two database writers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER

from tests.infrastructure.cfn_model import INFRASTRUCTURE, Resolver, raw_template

REQUIRED_TAGS = {"Environment", "Project", "Owner"}


@pytest.fixture
def resolver() -> Resolver:
    return Resolver()


def allow_statements(resolver: Resolver) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for name, role in resolver.resources("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow":
                    found.setdefault(name, []).append(statement)
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_no_iam_statement_allows_wildcard_actions(resolver: Resolver) -> None:
    for role, statements in allow_statements(resolver).items():
        for statement in statements:
            assert "NotAction" not in statement, role
            for action in as_list(statement["Action"]):
                assert "*" not in action, f"{role} allows {action}"


BACKUP_DELETION = {
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:PutLifecycleConfiguration",
    "s3:PutBucketVersioning",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
}


@pytest.mark.parametrize("role", ["TasksTaskRole", "AppTaskRole"])
def test_task_roles_cannot_delete_backups(resolver: Resolver, role: str) -> None:
    for statement in allow_statements(resolver)[role]:
        resources = " ".join(str(r) for r in as_list(statement["Resource"]))
        if "BackupsBucket" in resources or resources == "*":
            granted = BACKUP_DELETION & set(as_list(statement["Action"]))
            assert not granted, f"{role} may {granted} on the backups bucket"
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in resolver.resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == "<ref:BackupsBucket>"
    ]
    denials = [
        s
        for s in policy["Statement"]
        if s["Effect"] == "Deny"
        and isinstance(s["Principal"], dict)
        and f"<att:{role}.Arn>" in as_list(s["Principal"].get("AWS", []))
    ]
    assert denials and set(denials[0]["Action"]) >= BACKUP_DELETION


def test_app_service_never_runs_two_database_writers(resolver: Resolver) -> None:
    service = resolver.properties("AppService")
    assert service["DesiredCount"] == 1
    deployment = service["DeploymentConfiguration"]
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (0, 100)
    app = resolver.properties("AppTaskDefinition")
    assert (app["Cpu"], app["Memory"]) == ("256", "512")
    target_group = resolver.properties("AppTargetGroup")
    assert target_group["HealthCheckPath"] == "/health"


def test_every_taggable_resource_carries_the_three_tags() -> None:
    resolver = Resolver(
        {
            "EnableNatGateway": "true",
            "EnableCloudTrail": "true",
            "EnableVpcFlowLogs": "true",
            "DomainName": "d.example.org",
            "HostedZoneId": "Z1",
        }
    )
    for name, resource in resolver.resources().items():
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(
            region="us-east-1", resource_type=resource["Type"]
        ).schema
        tag_fields = [f for f in schema["properties"] if f.endswith("Tags")]
        if not tag_fields:
            continue
        field = "Tags" if "Tags" in tag_fields else tag_fields[0]
        tags = resource["Properties"].get(field, [])
        keys = {t["Key"] for t in tags} if isinstance(tags, list) else set(tags)
        assert keys >= REQUIRED_TAGS, f"{name} ({resource['Type']}) lacks {REQUIRED_TAGS - keys}"


def test_example_parameters_name_every_required_parameter() -> None:
    entries = json.loads((INFRASTRUCTURE / "parameters.example.json").read_text())
    given = {e["ParameterKey"] for e in entries}
    parameters = raw_template()["Parameters"]
    assert given <= set(parameters), given - set(parameters)
    assert {name for name, spec in parameters.items() if "Default" not in spec} <= given
