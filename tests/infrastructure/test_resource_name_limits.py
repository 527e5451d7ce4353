"""Every name the template derives from its parameters fits its service's limit for every value
the parameters allow: the longest value each parameter's AllowedPattern / MaxLength /
AllowedValues admits, in the longest Region the stack may deploy to."""

from __future__ import annotations

import re
from re import _parser as regex_parser  # type: ignore[attr-defined]
from typing import Any

import pytest

from tests.infrastructure.cfn_model import raw_template

# (resource type, property path): the service's documented maximum length of that name.
NAME_LIMITS = {
    ("AWS::ElasticLoadBalancingV2::LoadBalancer", "Name"): 32,
    ("AWS::ElasticLoadBalancingV2::TargetGroup", "Name"): 32,
    ("AWS::Scheduler::Schedule", "Name"): 64,
    ("AWS::S3::Bucket", "BucketName"): 63,
    ("AWS::SQS::Queue", "QueueName"): 80,
    ("AWS::SNS::Topic", "TopicName"): 256,
    ("AWS::ECS::Cluster", "ClusterName"): 255,
    ("AWS::ECS::TaskDefinition", "Family"): 255,
    ("AWS::ECS::Service", "ServiceName"): 255,
    ("AWS::Logs::LogGroup", "LogGroupName"): 512,
    ("AWS::SecretsManager::Secret", "Name"): 512,
    ("AWS::CloudWatch::Alarm", "AlarmName"): 255,
    ("AWS::CloudWatch::Dashboard", "DashboardName"): 255,
    ("AWS::CloudTrail::Trail", "TrailName"): 128,
    ("AWS::Budgets::Budget", "Budget.BudgetName"): 100,
    ("AWS::CloudFront::CachePolicy", "CachePolicyConfig.Name"): 128,
    ("AWS::CloudFront::VpcOrigin", "VpcOriginEndpointConfig.Name"): 64,
    ("AWS::IAM::Role", "RoleName"): 64,
}
# Properties ending in "Name" that name something else than the resource.
NOT_NAMES = {("AWS::EC2::VPCEndpoint", "ServiceName")}
UNBOUNDED = 10_000
_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def longest_value(name: str) -> int:
    """The longest value a parameter (or pseudo parameter) can take."""
    template = raw_template()
    if name == "AWS::Region":
        return max(map(len, template["Mappings"]["CloudFrontOriginFacing"]))
    if name in ("AWS::AccountId",):
        return 12
    if name in ("AWS::Partition",):
        return len("aws-us-gov")
    spec = template["Parameters"][name]
    bounds = [UNBOUNDED]
    if "AllowedValues" in spec:
        bounds.append(max(len(str(v)) for v in spec["AllowedValues"]))
    if "MaxLength" in spec:
        bounds.append(int(spec["MaxLength"]))
    if "AllowedPattern" in spec:
        bounds.append(min(regex_parser.parse(spec["AllowedPattern"]).getwidth()[1], UNBOUNDED))
    return min(bounds)


def longest_name(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        fixed = len(_VARIABLE.sub("", text))
        return fixed + sum(longest_value(v) for v in _VARIABLE.findall(text))
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return longest_value(value["Ref"])
    raise AssertionError(f"cannot bound the length of {value!r}: teach longest_name about it")


def at_path(properties: dict[str, Any], path: str) -> Any:
    node: Any = properties
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def derived_names() -> list[tuple[str, str, Any, int]]:
    found = []
    for logical_id, resource in raw_template()["Resources"].items():
        for (kind, path), limit in NAME_LIMITS.items():
            if resource["Type"] != kind:
                continue
            value = at_path(resource.get("Properties", {}), path)
            if value is not None:
                found.append((logical_id, path, value, limit))
    return found


NAMES = derived_names()


@pytest.mark.parametrize(
    ("logical_id", "path", "value", "limit"), NAMES, ids=[f"{n[0]}.{n[1]}" for n in NAMES]
)
def test_the_name_fits_for_every_allowed_parameter_value(
    logical_id: str, path: str, value: Any, limit: int
) -> None:
    longest = longest_name(value)
    assert longest <= limit, f"{logical_id}.{path} can be {longest} characters; at most {limit}"


def test_every_named_resource_type_has_a_known_limit() -> None:
    """A new resource type with a name property must have its limit written down above."""
    known = {kind for kind, _ in NAME_LIMITS}
    for logical_id, resource in raw_template()["Resources"].items():
        properties = resource.get("Properties", {})
        named = [
            key
            for key, value in properties.items()
            if re.search(r"(Name|Family)$", key)
            and (resource["Type"], key) not in NOT_NAMES
            and isinstance(value, dict)
            and "Fn::Sub" in value
        ]
        if named:
            assert resource["Type"] in known, f"{logical_id} ({resource['Type']}) {named}"


def test_the_bound_is_computed_from_the_patterns() -> None:
    assert longest_value("Environment") == 14
    assert longest_value("S3BucketPrefix") == 37
    assert longest_value("AWS::Region") == len("ap-northeast-1")
    assert len(NAMES) >= 25, "found too few names: did the template's shape change?"
