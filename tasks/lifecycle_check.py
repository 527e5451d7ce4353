"""lifecycle-check: buckets and log groups against the declared storage policy; --fix remediates."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from opsd.aws import describe_aws_error
from opsd.formatting import text_table
from opsd.metrics import Datum
from opsd.results import Status, TaskError, TaskResult
from opsd.runner import TaskContext
from tasks.storage.compliance import (
    CANNOT_CHECK,
    OK,
    VIOLATION,
    Finding,
    check_everything,
    fix,
    planned_change,
)

DESCRIPTION = (
    "Compare every bucket and log group with the declared storage policy "
    "(opsd/storage_policy.py). Exit 3 while violations remain."
)

_MARKS = {OK: "ok", VIOLATION: "VIOLATION", CANNOT_CHECK: "CANNOT CHECK"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--fix", action="store_true", help="apply the policy where it is not met")
    parser.add_argument(
        "--dry-run", action="store_true", help="with --fix: show the changes, make none"
    )


def run(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    s3, logs = ctx.clients("s3"), ctx.clients("logs")
    findings = _check_everything(s3, logs, ctx)
    changes: list[str] = []
    failed_fixes: list[str] = []
    if args.fix:
        for finding in (f for f in findings if f.fixable):
            ctx.check_stop()
            if args.dry_run:
                changes.append(planned_change(finding))
                continue
            try:
                changes.append(fix(finding, s3, logs, ctx.settings))
            except (ClientError, BotoCoreError) as exc:
                failed_fixes.append(
                    describe_aws_error(f"fix {finding.rule} of {finding.resource}", exc)
                )
        if not args.dry_run:
            ctx.log.info("policy applied", changes=len(changes), failed=len(failed_fixes))
            findings = _check_everything(s3, logs, ctx)
    violations = sum(f.status == VIOLATION for f in findings)
    unchecked = sum(f.status == CANNOT_CHECK for f in findings)
    # An unreadable rule is not known to comply, so it counts towards the alarm too.
    ctx.metrics.publish([Datum("LifecycleViolations", violations + unchecked)])
    checked = f"{len(findings)} checks: {violations} violations, {unchecked} cannot check"
    summary = checked
    if args.fix:
        verb = "would change" if args.dry_run else "changed"
        summary += f"; {verb} {len(changes)}" + (
            f", {len(failed_fixes)} fixes failed" if failed_fixes else ""
        )
    document = {
        "findings": [asdict(f) for f in findings],
        "violations": violations,
        "cannot_check": unchecked,
        "fix": bool(args.fix),
        "dry_run": bool(args.fix and args.dry_run),
        "changes": changes,
        "failed_fixes": failed_fixes,
    }
    output = json.dumps(document, indent=2) if args.json else _report(findings, document, checked)
    status = Status.VIOLATION if violations or unchecked or failed_fixes else Status.OK
    details = {"violations": violations, "cannot_check": unchecked, "changes": len(changes)}
    return TaskResult(ctx.task, status, summary, details, output=output)


def _check_everything(s3: Any, logs: Any, ctx: TaskContext) -> list[Finding]:
    """A failure no single finding can hold (the endpoint is down) ends the run in one line."""
    try:
        return check_everything(s3, logs, ctx.settings)
    except (ClientError, BotoCoreError) as exc:
        raise TaskError(describe_aws_error("check the storage policy", exc)) from None


def _outcome(finding: Finding) -> str:
    if finding.status == OK:
        return finding.actual
    return f"expected {finding.expected}; found {finding.actual}"


def _report(findings: list[Finding], document: dict[str, Any], checked: str) -> str:
    cells = [[_MARKS[f.status], f.resource, f.rule, _outcome(f)] for f in findings]
    lines = text_table(cells, [max(map(len, _MARKS.values()))])
    if document["fix"]:
        heading = "changes that --fix would make:" if document["dry_run"] else "changes made:"
        lines += ["", heading, *(f"  {c}" for c in document["changes"] or ["none"])]
        lines += [f"  FAILED {failure}" for failure in document["failed_fixes"]]
    lines += ["", checked]
    if document["violations"] and not document["fix"]:
        lines.append("run with --fix to apply the policy (--fix --dry-run to preview)")
    return "\n".join(lines)
