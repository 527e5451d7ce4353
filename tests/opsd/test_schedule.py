from datetime import UTC, datetime

import pytest

from opsd.schedule import TaskSpec, start_runs, trigger_for
from tasks.registry import SCHEDULED, TASKS

NOON = datetime(2026, 11, 24, 12, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("cron(0 */6 * * ? *)", datetime(2026, 11, 24, 18, 0, tzinfo=UTC)),
        ("cron(30 */6 * * ? *)", datetime(2026, 11, 24, 12, 30, tzinfo=UTC)),
        ("cron(0 3 * * ? *)", datetime(2026, 11, 25, 3, 0, tzinfo=UTC)),
        ("cron(15 */6 * * ? *)", datetime(2026, 11, 24, 12, 15, tzinfo=UTC)),
    ],
)
def test_eventbridge_cron_fires_when_eventbridge_would(expression: str, expected: datetime) -> None:
    assert trigger_for(expression).get_next_fire_time(None, NOON) == expected


def test_rate_expression_is_an_interval() -> None:
    trigger = trigger_for("rate(5 minutes)")
    first = trigger.get_next_fire_time(None, NOON)
    assert trigger.get_next_fire_time(first, first).timestamp() - first.timestamp() == 300


@pytest.mark.parametrize(
    "expression", ["cron(0 * * *)", "every 5 minutes", "rate(5 fortnights)", "cron(0 1 ? * MON *)"]
)
def test_unsupported_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="cron|rate|day-of-week"):
        trigger_for(expression)


def test_every_scheduled_task_runs_once_at_start_and_backup_first() -> None:
    at_start = start_runs(TASKS)
    assert set(at_start) == set(SCHEDULED), (
        "a scheduled task without a start_order never runs at start"
    )
    assert at_start[0] == "backup"  # the drill and the metrics need a backup
    orders = [spec.start_order for spec in SCHEDULED.values()]
    assert len(set(orders)) == len(orders), "two tasks share a start_order"


@pytest.mark.parametrize("spec", TASKS.values(), ids=list(TASKS))
def test_every_row_names_a_task_module_with_its_options(spec: TaskSpec) -> None:
    parser = spec.parser()
    assert parser.prog == f"python -m tasks {spec.name}"
    assert parser.description and spec.load().DESCRIPTION in parser.description
    assert callable(spec.load().run)
    parser.parse_args([])  # every option has a default: the daemon runs it without any
    if spec.schedule is not None:
        assert spec.trigger() is not None
