"""budget-poll: spend against the monthly budget, per-service breakdown, threshold alerts."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from opsd.aws import describe_aws_error
from opsd.metrics import Datum
from opsd.results import Status, TaskError, TaskResult
from opsd.runner import TaskContext
from tasks.costs import alerts as alerts
from tasks.costs.breakdown import Breakdown, daily_breakdown

DESCRIPTION = (
    "Read the monthly budget (BUDGET_NAME): actual and forecast spend as a percentage of the "
    "budget's own limit, the cost per service once a day, and one SNS alert per threshold "
    "(actual over 100 %, forecast over 100 %) per month. Exit 3 while over a threshold."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the reading as JSON")


def run(ctx: TaskContext, args: argparse.Namespace) -> TaskResult:
    return poll_budget(ctx, ctx.clock(), as_json=bool(args.json))


def read_spend(ctx: TaskContext) -> alerts.Spend:
    settings = ctx.settings
    try:
        account = ctx.clients("sts").get_caller_identity()["Account"]
        budget = ctx.clients("budgets").describe_budget(
            AccountId=account, BudgetName=settings.budget_name
        )["Budget"]
    except (ClientError, BotoCoreError) as exc:
        raise TaskError(describe_aws_error(f"read budget {settings.budget_name}", exc)) from exc
    calculated = budget.get("CalculatedSpend", {})
    if "ActualSpend" not in calculated:
        raise TaskError(f"read budget {settings.budget_name}: no actual spend reported yet")
    declared = budget.get("BudgetLimit", {}).get("Amount")
    limit = float(declared) if declared is not None else settings.budget_limit_usd
    if limit <= 0:
        raise TaskError(f"read budget {settings.budget_name}: its limit is {declared!r}")
    if declared is None:
        ctx.log.warning("budget has no limit: using BUDGET_LIMIT_USD", limit=limit)
    elif abs(limit - settings.budget_limit_usd) > 0.005:
        # The budget's own limit is what its notifications use; so do the figures here.
        ctx.log.info(
            "budget limit differs from BUDGET_LIMIT_USD",
            budget_limit=limit,
            configured=settings.budget_limit_usd,
        )
    forecast = calculated.get("ForecastedSpend", {}).get("Amount")
    return alerts.Spend(
        budget=settings.budget_name,
        environment=settings.environment,
        limit=limit,
        actual=float(calculated["ActualSpend"]["Amount"]),
        forecast=None if forecast is None else float(forecast),
    )


def poll_budget(ctx: TaskContext, now: datetime, as_json: bool = False) -> TaskResult:
    spend = read_spend(ctx)
    # The same unrounded values decide the thresholds below.
    data = [Datum("BudgetActualPercent", spend.actual_pct, timestamp=now)]
    if spend.forecast_pct is not None:
        data.append(Datum("BudgetForecastPercent", spend.forecast_pct, timestamp=now))
    ctx.metrics.publish(data)

    breakdown = daily_breakdown(ctx.clients("ce"), ctx.state, ctx.run_id, now, ctx.log)
    period = now.strftime("%Y-%m")
    crossed = [t for t in alerts.THRESHOLDS if t.crossed(spend.actual_pct, spend.forecast_pct)]
    outcomes = _send_alerts(ctx, crossed, spend, period, now, breakdown)

    report: dict[str, Any] = {
        "budget": spend.budget,
        "period": period,
        "limit_usd": spend.limit,
        "actual_usd": spend.actual,
        "forecast_usd": spend.forecast,
        "actual_percent": spend.actual_pct,
        "forecast_percent": spend.forecast_pct,
        "days_left": alerts.days_left(now.date()),
        "services": breakdown.services[:5],
        "services_note": breakdown.note,
        "cost_explorer_requested": breakdown.requested_now,
        "thresholds_crossed": [t.key for t in crossed],
        "alerts": outcomes,
    }
    failures = [key for key, outcome in outcomes.items() if outcome.startswith("failed")]
    if failures:
        raise TaskError(f"send budget alert {', '.join(failures)}: {outcomes[failures[0]]}")
    forecast = (
        "no forecast"
        if spend.forecast_pct is None
        else f"forecast {alerts.percent_text(spend.forecast_pct)}"
    )
    message = f"actual {alerts.percent_text(spend.actual_pct)}, {forecast} of ${spend.limit:,.2f}"
    if crossed:
        message += "; over " + ", ".join(f"{k} ({v})" for k, v in outcomes.items())
    status = Status.VIOLATION if crossed else Status.OK
    output = json.dumps(report, indent=2) if as_json else _text(report)
    details = {"actual_percent": report["actual_percent"], "crossed": len(crossed)}
    return TaskResult(ctx.task, status, message, details, output=output)


def _send_alerts(
    ctx: TaskContext,
    crossed: list[alerts.Threshold],
    spend: alerts.Spend,
    period: str,
    now: datetime,
    breakdown: Breakdown,
) -> dict[str, str]:
    """Outcome per crossed threshold: sent, already sent, not configured, or failed: why."""
    state = ctx.state
    topic = ctx.settings.alert_topic_arn
    outcomes: dict[str, str] = {}
    for threshold in crossed:
        if not topic:
            outcomes[threshold.key] = "not sent: ALERT_TOPIC_ARN is not set"
            continue
        if not state.claim_alert(spend.budget, period, threshold.key, ctx.run_id, now):
            outcomes[threshold.key] = "already sent this period"
            continue
        subject, body = alerts.compose(
            threshold, spend, period, now.date(), breakdown.services, breakdown.note
        )
        try:
            answer = ctx.clients("sns").publish(TopicArn=topic, Subject=subject, Message=body)
        except (ClientError, BotoCoreError) as exc:
            state.release_alert(spend.budget, period, threshold.key, ctx.run_id)
            outcomes[threshold.key] = "failed: " + describe_aws_error("publish to SNS", exc)
            continue
        message_id = str(answer["MessageId"])
        state.confirm_alert(spend.budget, period, threshold.key, message_id)
        ctx.log.info("budget alert sent", threshold=threshold.key, message_id=message_id)
        outcomes[threshold.key] = "sent"
    return outcomes


def _text(report: dict[str, Any]) -> str:
    forecast = (
        "no forecast yet"
        if report["forecast_usd"] is None
        else f"${report['forecast_usd']:,.2f} ({alerts.percent_text(report['forecast_percent'])})"
    )
    actual = alerts.percent_text(report["actual_percent"])
    lines = [
        f"budget {report['budget']}, period {report['period']}, limit ${report['limit_usd']:,.2f}",
        f"  actual   ${report['actual_usd']:,.2f} ({actual})",
        f"  forecast {forecast}",
        f"  days left {report['days_left']} (including today)",
        f"top services ({report['services_note']}):",
        *(f"  {name:<40} ${amount:,.2f}" for name, amount in report["services"]),
    ]
    if not report["services"]:
        lines.append("  none reported")
    if report["alerts"]:
        lines.append("thresholds crossed:")
        lines += [f"  {key}: {outcome}" for key, outcome in report["alerts"].items()]
    else:
        lines.append("no threshold crossed")
    return "\n".join(lines)
