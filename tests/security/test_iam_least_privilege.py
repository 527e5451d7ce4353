"""Least privilege in the template's IAM, beyond tests/infrastructure/test_template_security.py
(no `*` actions, no backup deletion): every S3 action is scoped to a bucket of this stack,
object actions to its objects and bucket actions to the bucket itself, and a `*` resource
only for actions that AWS does not let a policy scope."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infrastructure.cfn_model import Resolver

STACK_BUCKET = re.compile(r"^<att:(\w+Bucket)\.Arn>(/\*)?$")
# Actions with no resource-level permissions (AWS Service Authorization Reference).
UNSCOPABLE = {
    "cloudwatch:PutMetricData",
    "cloudwatch:GetMetricData",
    "ce:GetCostAndUsage",
    "logs:DescribeLogGroups",
}
# ListTasks and DescribeTasks scope by the ecs:cluster condition key instead of an ARN.
CLUSTER_CONDITIONED = {"ecs:ListTasks", "ecs:DescribeTasks"}
BUCKET_LEVEL = re.compile(
    r"^s3:(ListBucket\w*|Get(Bucket|Lifecycle|Encryption)\w*|Put(Bucket|Lifecycle|Encryption)\w*)$"
)


def allow_statements() -> list[tuple[str, dict[str, Any]]]:
    resolver = Resolver()
    found = []
    for name, role in resolver.resources("AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow":
                    found.append((name, statement))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


STATEMENTS = allow_statements()


@pytest.mark.parametrize(("role", "statement"), STATEMENTS, ids=[r for r, _ in STATEMENTS])
def test_s3_actions_are_scoped_to_this_stacks_buckets(role: str, statement: dict[str, Any]) -> None:
    s3_actions = [a for a in as_list(statement["Action"]) if a.startswith("s3:")]
    if not s3_actions:
        return
    buckets = set(Resolver().resources("AWS::S3::Bucket"))
    for resource in as_list(statement["Resource"]):
        match = STACK_BUCKET.match(str(resource))
        assert match and match.group(1) in buckets, f"{role}: {s3_actions} on {resource}"
        objects = match.group(2) is not None
        for action in s3_actions:
            assert bool(BUCKET_LEVEL.match(action)) != objects, f"{role}: {action} on {resource}"


def test_star_resources_only_for_unscopable_actions_or_under_a_cluster_condition() -> None:
    for role, statement in STATEMENTS:
        if "*" not in as_list(statement["Resource"]):
            continue
        actions = set(as_list(statement["Action"])) - UNSCOPABLE
        if actions:
            condition = statement.get("Condition", {}).get("ArnEquals", {})
            assert actions <= CLUSTER_CONDITIONED, f"{role}: {sorted(actions)} on *"
            assert condition.get("ecs:cluster") == "<att:Cluster.Arn>", f"{role}: {statement}"
