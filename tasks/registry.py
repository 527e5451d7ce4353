"""The task table (ARCHITECTURE §3, contract): read by `python -m tasks`, the daemon and `opsd
status`, held equal to the CloudFormation schedules by a test. A task joins by adding a module
and a row here. At start the daemon runs the tasks with a `start_order`, lowest first."""

from __future__ import annotations

from opsd.schedule import TaskSpec

TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            "backup",
            "tasks.backup",
            "cron(0 */6 * * ? *)",
            "consistent snapshot of the app database to S3, verified",
            start_order=10,
        ),
        TaskSpec(
            "verify-backup",
            "tasks.verify_backup",
            "cron(30 */6 * * ? *)",
            "restore drill: prove the newest backup restores exactly",
            start_order=20,
        ),
        TaskSpec(
            "restore",
            "tasks.restore",
            None,
            "list backups; restore latest, a point in time or a key, safely",
        ),
        TaskSpec(
            "lifecycle-check",
            "tasks.lifecycle_check",
            "cron(0 3 * * ? *)",
            "compare buckets and log groups with the storage policy; --fix remediates",
            start_order=30,
        ),
        TaskSpec(
            "budget-poll",
            "tasks.budget_poll",
            "cron(15 */6 * * ? *)",
            "spend against the monthly budget, threshold alerts",
            start_order=40,
        ),
        TaskSpec(
            "publish-metrics",
            "tasks.publish_metrics",
            "rate(5 minutes)",
            "app metrics from the database and backup age to CloudWatch",
            start_order=50,
        ),
    )
}

SCHEDULED = {name: spec for name, spec in TASKS.items() if spec.schedule is not None}
