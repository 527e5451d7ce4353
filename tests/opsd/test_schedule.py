from datetime import UTC, datetime

import pytest

from opsd.schedule import trigger_for
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


def test_schedule_table_matches_the_design() -> None:
    assert {name: spec.schedule for name, spec in TASKS.items()} == {
        "backup": "cron(0 */6 * * ? *)",
        "verify-backup": "cron(30 */6 * * ? *)",
        "restore": None,
        "lifecycle-check": "cron(0 3 * * ? *)",
        "budget-poll": "cron(15 */6 * * ? *)",
        "publish-metrics": "rate(5 minutes)",
    }
    assert "restore" not in SCHEDULED
    for spec in SCHEDULED.values():
        assert spec.trigger() is not None
