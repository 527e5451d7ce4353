"""Every IAM policy document of the template (role trust and inline policies, bucket, topic and
file system policies) and of the repository (the GitHub deploy role's trust policy), with the
stack's own resources written as the ARNs AWS would give them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tests.infrastructure.cfn_model import INFRASTRUCTURE, PSEUDO, Resolver

GITHUB_TRUST_POLICY = INFRASTRUCTURE / "github-oidc-trust-policy.json"
# Every optional resource present, so that every policy is seen.
ALL_OPTIONS = {
    "EnableNatGateway": "true",
    "EnableCloudTrail": "true",
    "EnableVpcFlowLogs": "true",
    "DomainName": "drawings.example.org",
    "HostedZoneId": "Z0123456789ABCDEFGHIJ",
    "S3BucketPrefix": "acme",
}
_PLACEHOLDER = re.compile(r"<(ref|att):([A-Za-z0-9]+)(?:\.([A-Za-z.]+))?>")


@dataclass(frozen=True)
class PolicyDocument:
    location: str  # e.g. "AppTaskRole.Policies[app]"
    kind: str  # "identity", "trust" or "resource"
    document: dict[str, Any]


def resource_arn(resolver: Resolver, logical_id: str, attribute: str | None) -> str:
    """What Ref / GetAtt (Arn) of a stack resource returns, for the resource types policies use."""
    region, account = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
    resource = resolver.template["Resources"][logical_id]
    kind = resource["Type"]
    properties = resolver.value(resource.get("Properties", {}))
    if kind == "AWS::S3::Bucket":
        name = properties["BucketName"]
        return name if attribute is None else f"arn:aws:s3:::{name}"
    arns = {
        "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{logical_id}",
        "AWS::SNS::Topic": f"arn:aws:sns:{region}:{account}:{properties.get('TopicName')}",
        "AWS::SecretsManager::Secret": (
            f"arn:aws:secretsmanager:{region}:{account}:secret:{properties.get('Name')}-AbCdEf"
        ),
        "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{properties.get('QueueName')}",
        "AWS::ECS::Cluster": (
            f"arn:aws:ecs:{region}:{account}:cluster/{properties.get('ClusterName')}"
        ),
        "AWS::Logs::LogGroup": (
            f"arn:aws:logs:{region}:{account}:log-group:{properties.get('LogGroupName')}:*"
        ),
        "AWS::CloudTrail::Trail": (
            f"arn:aws:cloudtrail:{region}:{account}:trail/{properties.get('TrailName')}"
        ),
    }
    if kind not in arns:
        raise AssertionError(f"{logical_id} ({kind}) in a policy: teach resource_arn about it")
    return arns[kind]


def concrete(resolver: Resolver, node: Any) -> Any:
    if isinstance(node, dict):
        return {k: concrete(resolver, v) for k, v in node.items()}
    if isinstance(node, list):
        return [concrete(resolver, v) for v in node]
    if isinstance(node, str):
        return _PLACEHOLDER.sub(lambda m: resource_arn(resolver, m[2], m[3]), node)
    return node


def template_policies(overrides: dict[str, str] | None = None) -> list[PolicyDocument]:
    resolver = Resolver({**ALL_OPTIONS, **(overrides or {})})
    found = []
    for name, resource in resolver.resources().items():
        properties = resource["Properties"]
        kind = resource["Type"]
        if kind == "AWS::IAM::Role":
            found.append(PolicyDocument(name, "trust", properties["AssumeRolePolicyDocument"]))
            for policy in properties.get("Policies", []):
                location = f"{name}.Policies[{policy['PolicyName']}]"
                found.append(PolicyDocument(location, "identity", policy["PolicyDocument"]))
        elif kind in ("AWS::S3::BucketPolicy", "AWS::SNS::TopicPolicy"):
            found.append(PolicyDocument(name, "resource", properties["PolicyDocument"]))
        elif kind == "AWS::EFS::FileSystem" and "FileSystemPolicy" in properties:
            found.append(PolicyDocument(name, "resource", properties["FileSystemPolicy"]))
    return [PolicyDocument(p.location, p.kind, concrete(resolver, p.document)) for p in found]


def repository_policies() -> list[PolicyDocument]:
    document = json.loads(GITHUB_TRUST_POLICY.read_text())
    return [PolicyDocument(GITHUB_TRUST_POLICY.name, "trust", document)]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = document["Statement"]
    return found if isinstance(found, list) else [found]
