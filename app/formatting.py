"""How numbers look on the pages (Jinja filters)."""

from __future__ import annotations

import math
from datetime import datetime

from opsd.formatting import human_size as size


def duration(seconds: float) -> str:
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 90:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    if hours < 48:
        return f"{int(hours)} h {int(minutes % 60)} min"
    return f"{hours / 24:.1f} days"


def metric_value(value: float | None, unit: str) -> str:
    if value is None:
        return "no data yet"
    if unit == "Seconds":
        return duration(value)
    if unit == "Bytes":
        return size(value)
    if unit == "Percent":
        # Cut, not rounded: 79.9975 % of the budget is not shown as the 80 % it has not reached.
        return f"{math.floor(value * 10 + 1e-9) / 10:.1f} %"
    if unit == "Milliseconds":
        return f"{value:.0f} ms"
    return f"{value:g}"


def milliseconds(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} ms"


def percent(fraction: float | None) -> str:
    return "–" if fraction is None else f"{100 * fraction:.1f} %"


def timestamp(value: str | datetime | None) -> str:
    if value is None:
        return "–"
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


FILTERS = {
    "duration": duration,
    "size": size,
    "metric_value": metric_value,
    "ms": milliseconds,
    "percent": percent,
    "timestamp": timestamp,
}
