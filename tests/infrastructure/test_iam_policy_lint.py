"""parliament (an IAM policy linter that knows every action's resource types and every
condition key's type) over each policy of the template and the GitHub deploy role's trust
policy: a StringEquals on an ARN-typed key, a wildcard where the operator compares literally,
a resource an action cannot be scoped to, an unknown action or key, all fail here."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.infrastructure.lint_tools import TOOLS_BIN, lint_tool
from tests.infrastructure.template_policies import (
    PolicyDocument,
    repository_policies,
    statements,
    template_policies,
)

# (policy location pattern, parliament issue): findings accepted, each for a stated reason.
ACCEPTED = {
    # A trust policy names no Resource by definition; parliament reads it as an identity policy.
    (r".*", "MALFORMED"): "trust",
    # parliament knows Cognito, Google, Facebook and Login with Amazon as web identity
    # providers; GitHub's is an IAM OIDC provider of the account, named by its ARN.
    (r"github-oidc-trust-policy\.json", "UNKNOWN_FEDERATION_SOURCE"): "trust",
    # A file system policy applies to its own file system, which it cannot name (no ARN
    # before the file system exists): "*" is how AWS documents it.
    (r"FileSystem", "RESOURCE_STAR"): "resource",
    # ListTasks/DescribeTasks are scoped by the ecs:cluster condition instead of an ARN.
    (r"TasksTaskRole\.Policies\[tasks\]", "RESOURCE_STAR"): "identity",
    # parliament marks both of GetObjectAttributes' alternative resource types (object,
    # accesspoint) as required; an object ARN is what AWS documents.
    (r"TasksTaskRole\.Policies\[tasks\]", "RESOURCE_MISMATCH"): "identity",
    # lifecycle-check --fix may put the TLS-only bucket policy on the drawings and models
    # buckets (never on backups, which the bucket policy denies): a deliberate power.
    (r"TasksTaskRole\.Policies\[tasks\]", "RESOURCE_POLICY_PRIVILEGE_ESCALATION"): "identity",
}
RUNNER = """
import json, sys
from parliament import analyze_policy_string
out = []
for entry in json.load(sys.stdin):
    policy = analyze_policy_string(json.dumps(entry["document"]), ignore_private_auditors=True)
    for f in policy.findings:
        out.append({"location": entry["location"], "kind": entry["kind"], "issue": f.issue,
                    "detail": str(f.detail)})
json.dump(out, sys.stdout)
"""


def parliament_findings(policies: list[PolicyDocument]) -> list[dict[str, str]]:
    lint_tool("parliament")
    python = Path(TOOLS_BIN) / "python"
    entries = [{"location": p.location, "kind": p.kind, "document": p.document} for p in policies]
    done = subprocess.run(
        [str(python), "-c", RUNNER],
        input=json.dumps(entries),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def accepted(finding: dict[str, str]) -> bool:
    for (location, issue), kind in ACCEPTED.items():
        if (
            issue == finding["issue"]
            and kind == finding["kind"]
            and re.fullmatch(location, finding["location"])
        ):
            return True
    return False


def all_policies() -> list[PolicyDocument]:
    github = [
        PolicyDocument(
            p.location, p.kind, json.loads(json.dumps(p.document).replace("ACCOUNT_ID", "1" * 12))
        )
        for p in repository_policies()
    ]
    return template_policies() + github


def test_every_policy_passes_parliament() -> None:
    policies = all_policies()
    assert len(policies) >= 12, "found too few policies: did the template's shape change?"
    findings = parliament_findings(policies)
    unexpected = [f for f in findings if not accepted(f)]
    assert not unexpected, "\n".join(
        f"{f['location']}: {f['issue']} {f['detail']}" for f in unexpected
    )


def test_parliament_finds_a_string_operator_on_an_arn_key() -> None:
    """The check works: the file system policy as it was (StringEquals on the access point ARN)
    is a finding."""
    (efs,) = [p for p in template_policies() if p.location == "FileSystem"]
    broken = json.loads(json.dumps(efs.document).replace('"ArnLike"', '"StringEquals"'))
    findings = parliament_findings([PolicyDocument("FileSystem", "resource", broken)])
    assert any(f["issue"].startswith("MISMATCHED_TYPE") for f in findings), findings


@pytest.mark.parametrize(
    "policy", all_policies(), ids=lambda p: p.location.replace(".Policies", "")
)
def test_wildcards_in_conditions_use_a_like_operator(policy: PolicyDocument) -> None:
    """StringEquals / ArnEquals compare literally: a `*` there matches only a literal `*`."""
    for statement in statements(policy.document):
        for operator, keys in statement.get("Condition", {}).items():
            for key, values in keys.items():
                values = values if isinstance(values, list) else [values]
                if any("*" in str(v) or "?" in str(v) for v in values):
                    assert (
                        operator.removeprefix("ForAnyValue:")
                        .removeprefix("ForAllValues:")
                        .removesuffix("IfExists")
                        .endswith("Like")
                    ), f"{policy.location}: {operator} {key} {values}"
