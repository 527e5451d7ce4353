"""Month-to-date cost per service from Cost Explorer, at most one request a day.

Each GetCostAndUsage request costs $0.01, so the day's first run claims the day in the ops
state (`OpsState.claim_cost_request`, the same trick as the alerts) and stores the answer; the
other runs of that day reuse it. Cost Explorer's end date is exclusive and it refuses an empty
range: the window ends today (through yesterday, the last complete day); on the 1st of a month
it is the whole previous month instead, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from opsd.aws import describe_aws_error
from opsd.state import OpsState


@dataclass(frozen=True)
class CostWindow:
    start: date
    end: date  # exclusive, as Cost Explorer takes it
    note: str


@dataclass(frozen=True)
class Breakdown:
    services: list[tuple[str, float]]  # largest first
    note: str
    requested_now: bool


def cost_window(today: date) -> CostWindow:
    month_start = today.replace(day=1)
    if today == month_start:
        previous = (month_start - timedelta(days=1)).replace(day=1)
        note = f"today is the 1st: all of {previous:%Y-%m}, as this month has no complete day yet"
        return CostWindow(previous, month_start, note)
    last = today - timedelta(days=1)
    return CostWindow(month_start, today, f"month to date, {month_start} to {last}")


def query_services(ce: Any, window: CostWindow) -> list[tuple[str, float]]:
    """One GetCostAndUsage request (more only if Cost Explorer pages the answer)."""
    totals: dict[str, float] = {}
    request: dict[str, Any] = {
        "TimePeriod": {"Start": window.start.isoformat(), "End": window.end.isoformat()},
        "Granularity": "MONTHLY",
        "Metrics": ["UnblendedCost"],
        "GroupBy": [{"Type": "DIMENSION", "Key": "SERVICE"}],
    }
    while True:
        answer = ce.get_cost_and_usage(**request)
        for period in answer.get("ResultsByTime", []):
            for group in period.get("Groups", []):
                name = group["Keys"][0]
                amount = float(group["Metrics"]["UnblendedCost"]["Amount"])
                totals[name] = totals.get(name, 0.0) + amount
        token = answer.get("NextPageToken")
        if not token:
            break
        request["NextPageToken"] = token
    return sorted(
        ((name, round(amount, 2)) for name, amount in totals.items()),
        key=lambda item: (-item[1], item[0]),
    )


def daily_breakdown(ce: Any, state: OpsState, run_id: str, now: datetime, log: Any) -> Breakdown:
    """Today's breakdown: from the state when a run already asked today, else one request."""
    day = now.date().isoformat()
    if not state.claim_cost_request(day, run_id, now):
        stored = state.cost_answer(day)
        if stored is None:
            return Breakdown([], "another run is asking Cost Explorer right now", False)
        services = [(str(name), float(amount)) for name, amount in stored["services"]]
        return Breakdown(services, stored["note"], False)
    window = cost_window(now.date())
    try:
        services = query_services(ce, window)
        note = window.note
    except (ClientError, BotoCoreError) as exc:
        services = []
        note = describe_aws_error("get cost and usage", exc)
        log.warning("cost breakdown unavailable", error=note)
    state.store_cost_answer(day, {"services": services, "note": note})
    log.info("cost explorer queried", start=str(window.start), end=str(window.end))
    return Breakdown(services, note, True)
