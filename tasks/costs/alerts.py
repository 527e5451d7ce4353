"""Budget threshold alerts: one SNS message per threshold per budget period, never repeated.

A run claims a threshold in the ops state before it publishes (`OpsState.claim_alert`: an
INSERT under a UNIQUE key), so two runs started at the same moment still send one message; a
failed publish releases the claim. A claim that was never confirmed (the run died between
claiming and publishing) is taken over after `opsd.state.STALE_CLAIM`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True)
class Threshold:
    key: str
    measure: str  # "actual" or "forecast"
    percent: float

    def crossed(self, actual_pct: float, forecast_pct: float | None) -> bool:
        """Strictly over, as the budget's own notifications (GREATER_THAN) decide it, on the
        same unrounded percentage that is published as the metric."""
        value = actual_pct if self.measure == "actual" else forecast_pct
        return value is not None and value > self.percent

    def describe(self) -> str:
        return f"{self.measure} spend went over {self.percent:g}% of the limit"


# No "actual 80 %": the default deployment's fixed cost is ~94 % of its $40 budget, so that
# alert would fire every month and teach people to ignore it (docs/COSTS.md). The forecast is
# the early warning; the actual line is the budget itself.
THRESHOLDS = (
    Threshold("actual-100", "actual", 100.0),
    Threshold("forecast-100", "forecast", 100.0),
)


def percent_text(value: float) -> str:
    """A percentage cut (not rounded) to one decimal: 79.9975 shows as 79.9 %, never as the 80
    it has not reached."""
    # (the 1e-9 absorbs float noise: 100 * 11.6 / 40 is 28.999999999999996, shown as 29.0 %)
    return f"{math.floor(value * 10 + 1e-9) / 10:.1f}%"


@dataclass(frozen=True)
class Spend:
    budget: str
    environment: str
    limit: float
    actual: float
    forecast: float | None

    @property
    def actual_pct(self) -> float:
        return 100.0 * self.actual / self.limit

    @property
    def forecast_pct(self) -> float | None:
        return None if self.forecast is None else 100.0 * self.forecast / self.limit


def days_left(today: date) -> int:
    """Days left in the calendar-month budget period, today included."""
    next_month = date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return (next_month - today).days


def _money(amount: float) -> str:
    return f"${amount:,.2f}"


def compose(
    threshold: Threshold,
    spend: Spend,
    period: str,
    today: date,
    services: list[tuple[str, float]] | None,
    services_note: str,
) -> tuple[str, str]:
    """(subject, body) of the alert; the subject stays under SNS's 100 characters."""
    value = spend.actual_pct if threshold.measure == "actual" else spend.forecast_pct
    shown = percent_text(value or 0.0)
    subject = (
        f"Budget {spend.budget}: {threshold.measure} spend {shown} of {_money(spend.limit)}"
    )[:100]
    lines = [
        f"Budget {spend.budget} ({spend.environment}), period {period}.",
        f"Threshold crossed: {threshold.describe()}.",
        f"Actual spend: {_money(spend.actual)} ({percent_text(spend.actual_pct)} of "
        f"{_money(spend.limit)}).",
    ]
    if spend.forecast is not None:
        shown = percent_text(spend.forecast_pct or 0.0)
        lines.append(f"Forecast spend: {_money(spend.forecast)} ({shown}).")
    left = days_left(today)
    lines.append(f"Days left in the period: {left} (including today, {today.isoformat()}).")
    if services:
        lines.append(f"Top services ({services_note}):")
        lines += [f"  {name}: {_money(amount)}" for name, amount in services[:5]]
    else:
        lines.append(f"Top services: not available ({services_note}).")
    return subject, "\n".join(lines)
