"""cfn-lint, checkov, shellcheck, hadolint and actionlint on the infrastructure files, and
`deploy.sh validate` on a machine without AWS credentials."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.infrastructure.cfn_model import INFRASTRUCTURE, REPO, TEMPLATE_PATH, raw_template
from tests.infrastructure.lint_tools import lint_tool, tools_environment

SHELL_SCRIPTS = sorted(INFRASTRUCTURE.glob("*.sh"))
DOCKERFILES = [REPO / "Dockerfile.prod", REPO / "Dockerfile.tasks"]


def run(command: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
        **kwargs,  # type: ignore[arg-type]
    )


def test_cfn_lint_reports_no_errors_or_warnings() -> None:
    done = run([lint_tool("cfn-lint"), TEMPLATE_PATH])
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def declared_checkov_skips() -> dict[tuple[str, str], str]:
    skips = {}
    for name, resource in raw_template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skips[(skip["id"], name)] = skip.get("comment", "")
    return skips


def test_every_checkov_skip_is_justified() -> None:
    skips = declared_checkov_skips()
    assert skips, "the template declares no checkov skips: did the Metadata key move?"
    unexplained = [key for key, comment in skips.items() if len(comment.split()) < 5]
    assert not unexplained, f"checkov skips without a justification: {unexplained}"


@pytest.mark.slow
def test_checkov_finds_nothing_beyond_the_justified_skips(tmp_path: Path) -> None:
    checkov = lint_tool("checkov")
    # checkov leaves out resources that carry a Condition; scan them all.
    template = raw_template()
    unconditioned = {
        **template,
        "Resources": {
            name: {k: v for k, v in resource.items() if k != "Condition"}
            for name, resource in template["Resources"].items()
        },
    }
    scanned = tmp_path / "template.json"
    scanned.write_text(json.dumps(unconditioned))
    done = run(
        [checkov, "-f", scanned, "--framework", "cloudformation", "--skip-download", "-o", "json"],
        env={**tools_environment(), "BC_SKIP_MAPPING": "TRUE"},
    )
    report = json.loads(done.stdout)
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert failed == [], f"checkov findings without a justified skip: {failed}"
    skipped = {
        (c["check_id"], c["resource"].split(".", 1)[1]) for c in report["results"]["skipped_checks"]
    }
    stale = set(declared_checkov_skips()) - skipped
    assert not stale, f"skips for checks that no longer fail (remove them): {sorted(stale)}"


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=lambda p: p.name)
def test_shell_script_passes_shellcheck(script: Path) -> None:
    done = run([lint_tool("shellcheck"), "--severity=style", script])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    done = run([lint_tool("hadolint"), dockerfile], cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr


def test_workflows_pass_actionlint() -> None:
    lint_tool("shellcheck")  # actionlint checks every `run:` script with it
    done = run([lint_tool("actionlint")], cwd=REPO, env=tools_environment())
    assert done.returncode == 0, done.stdout + done.stderr


def offline_environment(home: Path) -> dict[str, str]:
    """No AWS credentials or configuration at all, as on a fresh CI machine."""
    keep = {"PATH", "LANG", "LC_ALL", "TMPDIR"}
    environment = {k: v for k, v in os.environ.items() if k in keep}
    home.mkdir(exist_ok=True)
    environment.update(
        HOME=str(home),
        AWS_CONFIG_FILE=str(home / "none"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "none"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    return environment


@pytest.mark.slow
def test_deploy_validate_passes_offline_without_credentials(tmp_path: Path) -> None:
    lint_tool("cfn-lint")
    done = run(
        ["bash", INFRASTRUCTURE / "deploy.sh", "validate"], env=offline_environment(tmp_path)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cfn-lint: no errors or warnings" in done.stderr
    assert "validate-template skipped: no usable AWS credentials" in done.stderr


@pytest.mark.slow
def test_deploy_validate_fails_on_a_broken_template(tmp_path: Path) -> None:
    cfn_lint = lint_tool("cfn-lint")
    copy = tmp_path / "infrastructure"
    copy.mkdir()
    (copy / "deploy.sh").write_text((INFRASTRUCTURE / "deploy.sh").read_text())
    broken = TEMPLATE_PATH.read_text().replace("MinimumHealthyPercent: 0", "MinimumHealty: 0")
    (copy / "main-infrastructure.yaml").write_text(broken)
    environment = {**offline_environment(tmp_path / "home"), "CFN_LINT": str(cfn_lint)}
    done = run(["bash", copy / "deploy.sh", "validate"], env=environment)
    assert done.returncode != 0
    assert "MinimumHealty" in done.stdout + done.stderr


def test_deploy_refuses_an_unknown_command_and_a_bad_parameters_file(tmp_path: Path) -> None:
    environment = offline_environment(tmp_path)
    unknown = run(["bash", INFRASTRUCTURE / "deploy.sh", "launch"], env=environment)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines()[-1] == "deploy.sh: unknown command: launch"
    missing = run(
        ["bash", INFRASTRUCTURE / "deploy.sh", "deploy", tmp_path / "nope.json"], env=environment
    )
    assert missing.returncode == 1
    assert "parameters file not found" in missing.stderr
