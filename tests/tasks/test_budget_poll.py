from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests

from opsd.aws import AwsClients
from opsd.results import Status, TaskError
from opsd.runner import TaskContext
from opsd.settings import Settings
from tasks.budget_poll import poll_budget
from tasks.costs.alerts import days_left, percent_text
from tasks.costs.breakdown import cost_window

MID_MONTH = datetime(2026, 11, 24, 6, 15, tzinfo=UTC)
CE_RESULTS_URL = "http://motoapi.amazonaws.com/moto-api/static/ce/cost-and-usage-results"


def _create_budget(
    aws: AwsClients, settings: Settings, actual: float, forecast: float, limit: str = "40"
) -> None:
    account = aws("sts").get_caller_identity()["Account"]
    aws("budgets").create_budget(
        AccountId=account,
        Budget={
            "BudgetName": settings.budget_name,
            "BudgetLimit": {"Amount": limit, "Unit": "USD"},
            "TimeUnit": "MONTHLY",
            "BudgetType": "COST",
            "CalculatedSpend": {
                "ActualSpend": {"Amount": str(actual), "Unit": "USD"},
                "ForecastedSpend": {"Amount": str(forecast), "Unit": "USD"},
            },
        },
    )


def _queue_cost_results(*services: tuple[str, float]) -> None:
    groups = [
        {"Keys": [name], "Metrics": {"UnblendedCost": {"Amount": str(cost), "Unit": "USD"}}}
        for name, cost in services
    ]
    result = {"ResultsByTime": [{"Groups": groups, "Total": {}, "Estimated": True}]}
    assert requests.post(CE_RESULTS_URL, json={"results": [result]}).status_code == 201


@pytest.fixture
def alert_inbox(aws: AwsClients, settings: Settings) -> Iterator[tuple[Settings, Any]]:
    """Settings whose ALERT_TOPIC_ARN is a moto topic, and an SQS queue subscribed to it."""
    topic = aws("sns").create_topic(Name="drawing-analysis-alerts")["TopicArn"]
    queue_url = aws("sqs").create_queue(QueueName="alerts")["QueueUrl"]
    queue_arn = aws("sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    aws("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    yield settings.model_copy(update={"alert_topic_arn": topic}), queue_url


def _alerts(aws: AwsClients, queue_url: str) -> list[dict[str, str]]:
    messages = (
        aws("sqs")
        .receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        .get("Messages", [])
    )
    return [json.loads(m["Body"]) for m in messages]


@pytest.fixture
def poll(aws: AwsClients) -> Iterator[Any]:
    contexts: list[TaskContext] = []

    def run(settings: Settings, now: datetime = MID_MONTH, **kwargs: Any) -> Any:
        ctx = TaskContext(settings=settings, clients=aws, task="budget-poll")
        contexts.append(ctx)
        return poll_budget(ctx, now, **kwargs)

    yield run
    for ctx in contexts:
        ctx.close()


def _count_cost_requests(aws: AwsClients) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    aws("ce").meta.events.register(
        "provide-client-params.ce.GetCostAndUsage", lambda params, **_: seen.append(params)
    )
    return seen


def test_below_every_threshold_is_ok_and_sends_nothing(aws, alert_inbox, poll) -> None:
    settings, queue_url = alert_inbox
    _create_budget(aws, settings, actual=12.0, forecast=20.0)

    result = poll(settings)

    assert result.status is Status.OK
    assert result.message == "actual 30.0%, forecast 50.0% of $40.00"
    assert _alerts(aws, queue_url) == []


def test_a_forecast_over_the_limit_alerts_once_with_spend_services_and_days_left(
    aws, alert_inbox, poll
) -> None:
    settings, queue_url = alert_inbox
    _create_budget(aws, settings, actual=34.0, forecast=41.0)
    _queue_cost_results(
        ("Amazon Simple Storage Service", 4.5), ("Amazon Elastic Container Service", 21.25)
    )

    first = poll(settings)
    second = poll(settings, now=MID_MONTH.replace(hour=12))

    assert first.exit_code == second.exit_code == 3
    (alert,) = _alerts(aws, queue_url)
    assert alert["Subject"] == "Budget drawing-analysis-monthly: forecast spend 102.5% of $40.00"
    body = alert["Message"]
    assert "Actual spend: $34.00 (85.0% of $40.00)." in body
    assert "Forecast spend: $41.00 (102.5%)." in body
    assert "Days left in the period: 7 (including today, 2026-11-24)." in body
    assert body.index("Amazon Elastic Container Service: $21.25") < body.index(
        "Amazon Simple Storage Service: $4.50"
    )
    assert "already sent this period" in second.message


def test_each_threshold_alerts_separately_and_a_new_month_alerts_again(
    aws, alert_inbox, poll
) -> None:
    settings, queue_url = alert_inbox
    _create_budget(aws, settings, actual=41.0, forecast=55.0)

    poll(settings)
    subjects = sorted(a["Subject"] for a in _alerts(aws, queue_url))
    poll(settings, now=datetime(2026, 12, 2, 0, 15, tzinfo=UTC))
    next_month = _alerts(aws, queue_url)

    assert subjects == [
        "Budget drawing-analysis-monthly: actual spend 102.5% of $40.00",
        "Budget drawing-analysis-monthly: forecast spend 137.5% of $40.00",
    ]
    assert len(next_month) == 2


def test_two_polls_started_at_the_same_moment_send_one_alert(aws, alert_inbox, poll) -> None:
    settings, queue_url = alert_inbox
    _create_budget(aws, settings, actual=33.0, forecast=44.0)
    start = threading.Barrier(2)
    results: list[Any] = []

    def racer() -> None:
        start.wait()
        results.append(poll(settings))

    threads = [threading.Thread(target=racer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(_alerts(aws, queue_url)) == 1
    assert sorted(r.message.split("; ")[1] for r in results) == [
        "over forecast-100 (already sent this period)",
        "over forecast-100 (sent)",
    ]


def test_failed_publish_releases_the_claim_so_the_next_poll_sends(aws, alert_inbox, poll) -> None:
    settings, queue_url = alert_inbox
    _create_budget(aws, settings, actual=33.0, forecast=44.0)
    missing_topic = settings.alert_topic_arn + "-gone"

    with pytest.raises(TaskError, match="send budget alert forecast-100: failed: publish to SNS"):
        poll(settings.model_copy(update={"alert_topic_arn": missing_topic}))
    retried = poll(settings)

    assert "forecast-100 (sent)" in retried.message
    assert len(_alerts(aws, queue_url)) == 1


def test_cost_explorer_is_asked_at_most_once_a_day(aws, alert_inbox, poll) -> None:
    settings, _ = alert_inbox
    _create_budget(aws, settings, actual=10.0, forecast=20.0)
    _queue_cost_results(("AmazonCloudWatch", 1.25))
    requests_made = _count_cost_requests(aws)

    for hour in (0, 6, 12, 18):
        result = poll(settings, now=MID_MONTH.replace(hour=hour), as_json=True)
        assert json.loads(result.output)["services"] == [["AmazonCloudWatch", 1.25]]
    poll(settings, now=MID_MONTH.replace(day=25))

    assert [r["TimePeriod"] for r in requests_made] == [
        {"Start": "2026-11-01", "End": "2026-11-24"},
        {"Start": "2026-11-01", "End": "2026-11-25"},
    ]


def test_first_day_of_month_asks_for_the_previous_month(aws, alert_inbox, poll) -> None:
    settings, _ = alert_inbox
    _create_budget(aws, settings, actual=0.4, forecast=30.0)
    requests_made = _count_cost_requests(aws)

    result = poll(settings, now=datetime(2027, 1, 1, 0, 15, tzinfo=UTC), as_json=True)

    assert result.status is Status.OK
    assert requests_made[0]["TimePeriod"] == {"Start": "2026-12-01", "End": "2027-01-01"}
    report = json.loads(result.output)
    assert report["services_note"].startswith("today is the 1st: all of 2026-12")
    assert report["days_left"] == 31


def test_last_day_of_month_has_one_day_left(aws, alert_inbox, poll) -> None:
    settings, queue_url = alert_inbox
    _create_budget(aws, settings, actual=40.5, forecast=41.0)
    requests_made = _count_cost_requests(aws)

    poll(settings, now=datetime(2026, 11, 30, 18, 15, tzinfo=UTC))

    assert requests_made[0]["TimePeriod"] == {"Start": "2026-11-01", "End": "2026-11-30"}
    alerts = _alerts(aws, queue_url)
    assert len(alerts) == 2
    alert = alerts[0]
    assert "Days left in the period: 1 (including today, 2026-11-30)." in alert["Message"]


@pytest.mark.parametrize(
    ("today", "start", "end"),
    [
        (date(2026, 3, 1), date(2026, 2, 1), date(2026, 3, 1)),
        (date(2026, 1, 1), date(2025, 12, 1), date(2026, 1, 1)),
        (date(2026, 2, 28), date(2026, 2, 1), date(2026, 2, 28)),
        (date(2026, 12, 31), date(2026, 12, 1), date(2026, 12, 31)),
        (date(2026, 12, 2), date(2026, 12, 1), date(2026, 12, 2)),
    ],
)
def test_cost_window_is_never_empty(today: date, start: date, end: date) -> None:
    window = cost_window(today)
    assert (window.start, window.end) == (start, end)
    assert window.start < window.end


def test_days_left_counts_today_across_year_end() -> None:
    assert days_left(date(2026, 12, 31)) == 1
    assert days_left(date(2026, 12, 1)) == 31
    assert days_left(date(2028, 2, 1)) == 29


def test_budget_percentages_are_published(aws, alert_inbox, poll) -> None:
    settings, _ = alert_inbox
    _create_budget(aws, settings, actual=10.0, forecast=30.0)

    poll(settings, now=datetime.now(UTC))

    published = {}
    for name in ("BudgetActualPercent", "BudgetForecastPercent"):
        stats = aws("cloudwatch").get_metric_statistics(
            Namespace=settings.metrics_namespace,
            MetricName=name,
            Dimensions=[{"Name": "Environment", "Value": settings.environment}],
            StartTime="2000-01-01T00:00:00Z",
            EndTime="2100-01-01T00:00:00Z",
            Period=60,
            Statistics=["Maximum"],
        )
        published[name] = [p["Maximum"] for p in stats["Datapoints"]]
    assert published == {"BudgetActualPercent": [25.0], "BudgetForecastPercent": [75.0]}


def test_missing_budget_is_a_one_line_error(alert_inbox, poll) -> None:
    settings, _ = alert_inbox
    with pytest.raises(
        TaskError, match=r"^read budget drawing-analysis-monthly: NotFoundException"
    ):
        poll(settings)


def _published(aws: AwsClients, settings: Settings, name: str) -> list[float]:
    answer = aws("cloudwatch").get_metric_statistics(
        Namespace=settings.metrics_namespace,
        MetricName=name,
        Dimensions=[{"Name": "Environment", "Value": settings.environment}],
        StartTime=MID_MONTH.replace(hour=0),
        EndTime=MID_MONTH.replace(hour=23),
        Period=60,
        Statistics=["Maximum"],
    )
    return [point["Maximum"] for point in answer["Datapoints"]]


def test_just_under_80_percent_is_published_unrounded_and_says_79_9(aws, alert_inbox, poll) -> None:
    settings, queue_url = alert_inbox
    _create_budget(aws, settings, actual=31.999, forecast=39.0)

    result = poll(settings, as_json=True)

    assert _published(aws, settings, "BudgetActualPercent") == [pytest.approx(79.9975, abs=1e-9)]
    assert json.loads(result.output)["actual_percent"] == pytest.approx(79.9975, abs=1e-9)
    assert result.message == "actual 79.9%, forecast 97.5% of $40.00"
    assert result.status is Status.OK
    assert _alerts(aws, queue_url) == []


def test_percentages_are_of_the_budgets_own_limit_not_the_setting(aws, alert_inbox, poll) -> None:
    settings, queue_url = alert_inbox
    assert settings.budget_limit_usd == 40.0
    _create_budget(aws, settings, actual=40.0, forecast=48.0, limit="50")

    result = poll(settings)

    assert result.message == "actual 80.0%, forecast 96.0% of $50.00"
    assert _published(aws, settings, "BudgetActualPercent") == [80.0]
    assert _published(aws, settings, "BudgetForecastPercent") == [96.0]
    assert result.status is Status.OK
    assert _alerts(aws, queue_url) == []


@pytest.mark.parametrize(
    ("actual", "forecast", "crossed"),
    [
        (37.7, 38.0, []),  # the default deployment's month (docs/COSTS.md): no alert
        (40.0, 40.0, []),  # at the limit is not over it (the budget's GREATER_THAN)
        (40.01, 40.0, ["actual-100"]),
        (20.0, 40.01, ["forecast-100"]),
    ],
)
def test_alerts_fire_only_when_over_the_limit(
    aws, alert_inbox, poll, actual: float, forecast: float, crossed: list[str]
) -> None:
    settings, queue_url = alert_inbox
    _create_budget(aws, settings, actual=actual, forecast=forecast)

    result = poll(settings, as_json=True)

    assert json.loads(result.output)["thresholds_crossed"] == crossed
    assert len(_alerts(aws, queue_url)) == len(crossed)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(79.9975, "79.9%"), (100 * 11.6 / 40, "29.0%"), (80.0, "80.0%"), (100.04, "100.0%")],
)
def test_percentages_are_cut_to_one_decimal_never_rounded_up(value: float, shown: str) -> None:
    assert percent_text(value) == shown
