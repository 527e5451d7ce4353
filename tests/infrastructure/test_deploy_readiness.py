"""What a first deployment meets that no linter sees (issue 18): the network path through
CloudFront, the origin request policy, retries after a failed first create, the parameters'
shapes, the workflow's OIDC subjects, tags and action pins, and the budget the tasks poll."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from opsd import storage_policy
from opsd.settings import BACKUP_PREFIX_SHAPE, ConfigError, load_settings
from tests.infrastructure.cfn_model import INFRASTRUCTURE, REPO, Resolver, raw_template
from tests.infrastructure.cloudfront_policies import MANAGED_ORIGIN_REQUEST_POLICIES
from tests.infrastructure.template_policies import GITHUB_TRUST_POLICY, statements
from tests.infrastructure.test_infrastructure_lint import offline_environment

WORKFLOW = REPO / ".github" / "workflows" / "deploy.yml"
REQUIRED_TAGS = {"Environment", "Project", "Owner"}


@pytest.fixture
def resolver() -> Resolver:
    return Resolver()


def parameter(name: str) -> dict[str, Any]:
    return dict(raw_template()["Parameters"][name])


def allowed(name: str, value: str) -> bool:
    spec = parameter(name)
    if len(value) > int(spec.get("MaxLength", 4096)):
        return False
    return re.fullmatch(spec["AllowedPattern"], value) is not None


# ---------------------------------------------------------------- network and CloudFront


def test_the_alb_admits_cloudfronts_origin_facing_ranges_in_every_supported_region() -> None:
    template = raw_template()
    mapping = template["Mappings"]["CloudFrontOriginFacing"]
    (assertion,) = template["Rules"]["SupportedRegion"]["Assertions"]
    regions, region_ref = assertion["Assert"]["Fn::Contains"]
    assert region_ref == {"Ref": "AWS::Region"}
    assert sorted(regions) == sorted(mapping), "the region rule and the mapping must agree"
    for region, entry in mapping.items():
        assert re.fullmatch(r"pl-[0-9a-f]{8,17}", entry["PrefixListId"]), region
    (rule,) = Resolver().properties("LoadBalancerSecurityGroup")["SecurityGroupIngress"]
    assert "CidrIp" not in rule and "CidrIpv6" not in rule, "a CIDR does not admit a VPC origin"
    assert (rule["FromPort"], rule["ToPort"]) == (80, 80)
    assert rule["SourcePrefixListId"] == mapping["eu-west-1"]["PrefixListId"]  # the model's region


def test_the_default_behaviour_forwards_the_viewers_host_and_address(resolver: Resolver) -> None:
    config = resolver.properties("Distribution")["DistributionConfig"]
    policy_id = config["DefaultCacheBehavior"]["OriginRequestPolicyId"]
    assert policy_id in MANAGED_ORIGIN_REQUEST_POLICIES, f"unknown policy {policy_id}"
    policy = MANAGED_ORIGIN_REQUEST_POLICIES[policy_id]
    assert policy.forwards_viewer_host, f"{policy.name}: the app would see the ALB's host name"
    assert "CloudFront-Viewer-Address" in policy.cloudfront_headers, policy.name


# ---------------------------------------------------------------- retries and names


def test_data_is_kept_but_a_failed_first_create_cleans_up() -> None:
    for name, resource in raw_template()["Resources"].items():
        if "DeletionPolicy" in resource:
            assert resource["DeletionPolicy"] == "RetainExceptOnCreate", name
            assert resource.get("UpdateReplacePolicy") == "Retain", name
    kept = {
        n for n, r in raw_template()["Resources"].items() if r.get("DeletionPolicy") is not None
    }
    assert {"FileSystem", "DrawingsBucket", "ModelsBucket", "BackupsBucket"} <= kept


@pytest.mark.parametrize(
    ("name", "value", "ok"),
    [
        ("Environment", "production", True),
        ("Environment", "qa", True),
        ("Environment", "a" * 14, True),
        ("Environment", "a" * 15, False),
        ("Environment", "staging-", False),
        ("Environment", "local", False),
        ("Environment", "1st", False),
        ("S3BucketPrefix", "acme", True),
        ("S3BucketPrefix", "a" * 37, True),
        ("S3BucketPrefix", "a" * 38, False),
        ("S3BucketPrefix", "acme-", False),
        ("S3BucketPrefix", "xn--acme", False),
    ],
)
def test_parameter_patterns(name: str, value: str, ok: bool) -> None:
    assert allowed(name, value) is ok


# ---------------------------------------------------------------- BACKUP_PREFIX and days

PREFIX_SAMPLES = ["", "db/", "a/b/", "db", "/db/", "a//b/", "db/x", "sp ace/", "x" * 199 + "/"]


def test_the_backup_prefix_parameter_takes_what_the_settings_take_and_nothing_else() -> None:
    assert parameter("BackupPrefix")["AllowedPattern"] == f"^{BACKUP_PREFIX_SHAPE}$"
    assert int(parameter("BackupPrefix")["MaxLength"]) == 200
    for value in PREFIX_SAMPLES:
        try:
            from_settings: str | None = load_settings(backup_prefix=value).backup_prefix
        except ConfigError:
            from_settings = None
        if allowed("BackupPrefix", value):
            assert from_settings == value, value
        else:
            # 'db' is read as 'db/' by the code; the template insists on the slash, since its
            # lifecycle rules take the value as it is.
            assert from_settings in (None, value + "/"), value
    assert not allowed("BackupPrefix", "db")


@pytest.mark.parametrize("value", [v for v in PREFIX_SAMPLES if allowed("BackupPrefix", v)])
def test_the_lifecycle_rules_cover_exactly_where_backups_are_written(value: str) -> None:
    resolver = Resolver({"BackupPrefix": value})
    settings = load_settings(
        backup_prefix=value, s3_bucket_drawings="d", s3_bucket_models="m", s3_bucket_backups="b"
    )
    for rule in resolver.properties("BackupsBucket")["LifecycleConfiguration"]["Rules"]:
        assert rule["Prefix"] == storage_policy.backup_key_prefix(settings), rule["Id"]


def test_the_settings_refuse_a_malformed_prefix_in_one_line() -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(backup_prefix="/db//")
    assert str(refused.value).startswith("BACKUP_PREFIX: must be empty or folder names")
    assert "\n" not in str(refused.value)


def write_parameters(path: Path, **values: str) -> Path:
    entries = json.loads((INFRASTRUCTURE / "parameters.example.json").read_text())
    given = {e["ParameterKey"]: e["ParameterValue"] for e in entries} | values
    entries = [{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()]
    path.write_text(json.dumps(entries))
    return path


def deploy(tmp_path: Path, parameters: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INFRASTRUCTURE / "deploy.sh"), "deploy", str(parameters)],
        env=offline_environment(tmp_path / "home"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_deploy_refuses_expiry_sooner_than_glacier_plus_90_days_before_any_aws_call(
    tmp_path: Path,
) -> None:
    bad = write_parameters(
        tmp_path / "p.json", BackupGlacierDays="150", BackupExpiryDays="200", BackupPrefix="db"
    )
    done = deploy(tmp_path, bad)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert f"{bad}: BackupExpiryDays=200: must be at least BackupGlacierDays (150) + 90" in (
        done.stderr
    )
    assert any(line.startswith(f"{bad}: BackupPrefix='db': empty, or folder") for line in lines)
    assert lines[-1] == f"deploy.sh: fix {bad} (nothing was deployed)"


def test_the_example_parameters_pass_the_check(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(INFRASTRUCTURE / "check_parameters.py"),
            str(INFRASTRUCTURE / "main-infrastructure.yaml"),
            str(INFRASTRUCTURE / "parameters.example.json"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")


# ---------------------------------------------------------------- the workflow


def workflow() -> dict[str, Any]:
    return yaml.safe_load(WORKFLOW.read_text())


def github_expression_default(value: str) -> str:
    """`${{ vars.X || 'production' }}` as GitHub evaluates it with the variable unset."""
    match = re.fullmatch(r"\$\{\{\s*vars\.\w+\s*\|\|\s*'([^']+)'\s*\}\}", value.strip())
    return match[1] if match else value


def oidc_subjects() -> dict[str, str]:
    """The `sub` claim of each job that assumes the deploy role, on a push to main."""
    found = {}
    for name, job in workflow()["jobs"].items():
        steps = job.get("steps", [])
        if not any("configure-aws-credentials" in str(s.get("uses", "")) for s in steps):
            continue
        environment = job.get("environment")
        if isinstance(environment, dict):
            environment = environment.get("name")
        if environment:
            found[name] = f"repo:OWNER/REPO:environment:{github_expression_default(environment)}"
        else:
            found[name] = "repo:OWNER/REPO:ref:refs/heads/main"
    return found


def test_the_deploy_roles_trust_policy_admits_every_job_that_assumes_it() -> None:
    (statement,) = statements(json.loads(GITHUB_TRUST_POLICY.read_text()))
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    condition = statement["Condition"]
    assert condition["StringEquals"]["token.actions.githubusercontent.com:aud"] == (
        "sts.amazonaws.com"
    )
    trusted = []
    for operator, keys in condition.items():
        for pattern in keys.get("token.actions.githubusercontent.com:sub", []):
            trusted.append((operator, pattern))
    subjects = oidc_subjects()
    assert set(subjects) == {"build", "deploy"}
    for job, subject in subjects.items():
        assert any(
            subject == pattern if op == "StringEquals" else fnmatch.fnmatchcase(subject, pattern)
            for op, pattern in trusted
        ), f"job {job} presents {subject}, which the trust policy does not admit"
    readme = (INFRASTRUCTURE / "README.md").read_text()
    assert GITHUB_TRUST_POLICY.name in readme
    assert "environment:production" in readme


def cloudformation_deploys(script: str) -> list[str]:
    joined = script.replace("\\\n", " ")
    return [line for line in joined.splitlines() if "aws cloudformation deploy" in line]


def tag_keys(command: str) -> set[str]:
    after = command.split("--tags", 1)[1].split(" --", 1)[0]
    return {word.strip('"').split("=", 1)[0] for word in after.split()}


def test_every_stack_update_carries_the_required_tags() -> None:
    commands = [
        command
        for job in workflow()["jobs"].values()
        for step in job.get("steps", [])
        for command in cloudformation_deploys(step.get("run", ""))
    ]
    commands += cloudformation_deploys((INFRASTRUCTURE / "deploy.sh").read_text())
    assert len(commands) == 3, "the workflow's update and roll-back, and deploy.sh"
    for command in commands:
        assert "--tags" in command, command
        assert tag_keys(command) == REQUIRED_TAGS, command


def test_every_action_is_pinned_to_a_commit_of_a_named_release() -> None:
    uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", WORKFLOW.read_text(), re.MULTILINE)
    assert len(uses) >= 10
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r"\s*# v\d+\.\d+\.\d+", comment), f"{action}: name the release"


# ---------------------------------------------------------------- budget


def test_the_tasks_poll_the_budget_by_its_name(resolver: Resolver) -> None:
    name = resolver.properties("MonthlyBudget")["Budget"]["BudgetName"]
    (tasks,) = resolver.properties("TasksTaskDefinition")["ContainerDefinitions"]
    variables = {e["Name"]: e["Value"] for e in tasks["Environment"]}
    assert variables["BUDGET_NAME"] == name, "Ref of AWS::Budgets::Budget is its id"
    (role,) = [
        s
        for p in resolver.properties("TasksTaskRole")["Policies"]
        for s in p["PolicyDocument"]["Statement"]
        if s.get("Sid") == "Budget"
    ]
    assert role["Resource"].endswith(f":budget/{name}")


# ---------------------------------------------------------------- found in the review

# EC2 accepts only these characters in security group and rule descriptions.
EC2_DESCRIPTION = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]*$")


def test_security_group_descriptions_use_only_the_characters_ec2_accepts() -> None:
    resolver = Resolver(
        {"EnableNatGateway": "true", "EnableCloudTrail": "true", "EnableVpcFlowLogs": "true"}
    )
    for name, resource in resolver.resources().items():
        if not resource["Type"].startswith("AWS::EC2::SecurityGroup"):
            continue
        properties = resource["Properties"]
        texts = [properties.get("GroupDescription", ""), properties.get("Description", "")]
        for rule in properties.get("SecurityGroupIngress", []) + properties.get(
            "SecurityGroupEgress", []
        ):
            texts.append(rule.get("Description", ""))
        for text in texts:
            assert EC2_DESCRIPTION.match(text) and len(text) <= 255, f"{name}: {text!r}"


def test_every_security_group_states_its_egress_inline() -> None:
    """Only an inline SecurityGroupEgress removes the default allow-all egress rule."""
    for name, resource in raw_template()["Resources"].items():
        if resource["Type"] == "AWS::EC2::SecurityGroup":
            assert resource["Properties"].get("SecurityGroupEgress"), name


def test_the_vpc_origin_is_created_after_the_internet_gateway_is_attached() -> None:
    depends = raw_template()["Resources"]["VpcOrigin"].get("DependsOn", [])
    assert "InternetGatewayAttachment" in ([depends] if isinstance(depends, str) else depends)
