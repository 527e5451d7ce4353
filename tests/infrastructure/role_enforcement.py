"""Running code under a role of the template: every AWS call the code makes (to moto) is first
checked against the role's Allow statements, and refused with AccessDenied, as AWS would,
when no statement allows its IAM action on its resource. Conditions are not evaluated, so a
pass here is necessary, not sufficient; a refusal here is a refusal in AWS.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError

from opsd.settings import Settings
from tests.infrastructure.cfn_model import PSEUDO, Resolver

# S3 operations whose IAM action is not s3:<OperationName> (Service Authorization Reference).
S3_ACTIONS = {
    "HeadBucket": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "ListParts": "s3:ListMultipartUploadParts",
    "HeadObject": "s3:GetObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
}
# With a VersionId, these act on one version and need the ...Version action.
S3_VERSIONED = {"s3:GetObject", "s3:DeleteObject", "s3:GetObjectAttributes"}
IAM_PREFIX = {"monitoring": "cloudwatch"}


def iam_request(service: str, operation: str, params: dict[str, Any]) -> tuple[str, str]:
    """(IAM action, resource ARN) of one API call."""
    if service == "s3":
        action = S3_ACTIONS.get(operation, f"s3:{operation}")
        if params.get("VersionId") and action in S3_VERSIONED:
            action += "Version"
        bucket = params.get("Bucket", "")
        key = params.get("Key")
        return action, f"arn:aws:s3:::{bucket}" + (f"/{key}" if key is not None else "")
    if service == "logs":
        # DescribeLogGroups (no group named) is authorized on log-group:*.
        region, account = PSEUDO["AWS::Region"], PSEUDO["AWS::AccountId"]
        group = params.get("logGroupName", "*")
        return f"logs:{operation}", f"arn:aws:logs:{region}:{account}:log-group:{group}"
    return f"{IAM_PREFIX.get(service, service)}:{operation}", "*"


class Role:
    """The Allow statements of one IAM role of the template, with its buckets named as the
    settings name them."""

    def __init__(self, logical_id: str, settings: Settings) -> None:
        self.logical_id = logical_id
        resolver = Resolver({"Environment": settings.environment})
        role = resolver.properties(logical_id)
        buckets = {
            "<att:DrawingsBucket.Arn>": f"arn:aws:s3:::{settings.s3_bucket_drawings}",
            "<att:ModelsBucket.Arn>": f"arn:aws:s3:::{settings.s3_bucket_models}",
            "<att:BackupsBucket.Arn>": f"arn:aws:s3:::{settings.s3_bucket_backups}",
        }
        self.statements: list[tuple[list[str], list[str]]] = []
        for policy in role.get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement["Effect"] != "Allow":
                    continue
                resources = []
                for resource in _as_list(statement["Resource"]):
                    for placeholder, arn in buckets.items():
                        resource = str(resource).replace(placeholder, arn)
                    # Other stack resources (topics, secrets, clusters) are not named here.
                    resources.append("*" if "<" in resource else resource)
                self.statements.append((_as_list(statement["Action"]), resources))

    def allows(self, action: str, resource: str) -> bool:
        for actions, resources in self.statements:
            if any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions) and any(
                fnmatch.fnmatchcase(resource, r) for r in resources
            ):
                return True
        return False


@contextmanager
def acting_as(role: Role, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every AWS call in the block is made as `role`; yields the IAM actions used."""
    used: list[str] = []
    original = BaseClient._make_api_call

    def guarded(client: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        service = client.meta.service_model.endpoint_prefix
        action, resource = iam_request(service, operation, params)
        used.append(action)
        if not role.allows(action, resource):
            message = f"{role.logical_id} is not authorized to perform: {action} on {resource}"
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": message}}, operation)
        return original(client, operation, params)

    with monkeypatch.context() as patch:
        patch.setattr(BaseClient, "_make_api_call", guarded)
        yield used


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
