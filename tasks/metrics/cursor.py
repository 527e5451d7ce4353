"""Where publish-metrics stands, in the ops state: how far CloudWatch has been sent.

The cursor is the first item not yet sent: a minute and the index of an item within that
minute's items (AnalysisCount, AnomalyCount, then the ProcessingTime parts), so a call that ends
in the middle of a minute is resumed exactly after its last item. Before each PutMetricData call
the run writes what the call carries (the in-flight record); right after the call succeeds one
transaction moves the cursor past it, forgets the in-flight record and notes the newest minute
sent, for the later check that CloudWatch still holds it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from opsd.state import OpsState
from tasks.metrics.analysis_minutes import parse_minute

WATERMARK_KEY = "publish-metrics.watermark"
IN_FLIGHT_KEY = "publish-metrics.in-flight"
SENT_KEY = "publish-metrics.sent"
# Minutes sent but not yet seen back in CloudWatch; older entries are dropped once checked.
MAX_SENT_ENTRIES = 50


@dataclass(frozen=True, order=True)
class Cursor:
    minute: str
    item: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"minute": self.minute, "item": self.item}

    def __str__(self) -> str:
        return self.minute if self.item == 0 else f"{self.minute} (from item {self.item})"


@dataclass(frozen=True)
class Position:
    """Where one datum sits: its minute, its index there, and the samples of its metric in that
    minute up to and including it (what CloudWatch's SampleCount shows once it has arrived)."""

    minute: str
    item: int
    metric: str
    samples: float

    def after(self) -> Cursor:
        return Cursor(self.minute, self.item + 1)


@dataclass(frozen=True)
class InFlight:
    run_id: str
    start: Cursor
    through: Cursor
    witness: Position
    sent_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "from": self.start.to_json(),
            "through": self.through.to_json(),
            "witness": vars(self.witness),
            "sent_at": self.sent_at,
        }


def parse_cursor(value: Any) -> Cursor | None:
    """A stored cursor (or the plain minute older versions stored); None when unusable."""
    try:
        if isinstance(value, str):
            parse_minute(value)
            return Cursor(value)
        if isinstance(value, dict):
            parse_minute(str(value["minute"]))
            item = int(value["item"])
            return Cursor(str(value["minute"]), item) if item >= 0 else None
    except (KeyError, TypeError, ValueError):
        return None
    return None


def parse_in_flight(value: Any) -> InFlight | None:
    try:
        start = parse_cursor(value["from"])
        through = parse_cursor(value["through"])
        witness = Position(**value["witness"])
        if start is None or through is None:
            return None
        return InFlight(str(value["run_id"]), start, through, witness, str(value["sent_at"]))
    except (KeyError, TypeError, ValueError):
        return None


class PublishState:
    """The publish-metrics entries of the ops state, each change one transaction."""

    def __init__(self, state: OpsState) -> None:
        self.state = state

    def raw_cursor(self) -> Any:
        return self.state.get(WATERMARK_KEY)

    def in_flight(self) -> tuple[InFlight | None, bool]:
        """(the record, whether one was there at all: a record that does not parse is dropped)"""
        raw = self.state.get(IN_FLIGHT_KEY)
        return (None, False) if raw is None else (parse_in_flight(raw), True)

    def sent(self) -> list[tuple[str, str]]:
        raw = self.state.get(SENT_KEY)
        if not isinstance(raw, list):
            return []
        return [(str(m), str(at)) for m, at in raw if isinstance(m, str) and isinstance(at, str)]

    def mark_in_flight(self, record: InFlight, now: datetime) -> None:
        self.state.set(IN_FLIGHT_KEY, record.to_json(), now)

    def move(
        self,
        cursor: Cursor,
        now: datetime,
        sent_minute: str | None = None,
        clear_sent: bool = False,
    ) -> None:
        """Cursor to `cursor`, the in-flight record gone, `sent_minute` noted: one transaction."""
        with self.state.transaction():
            self.state.set(WATERMARK_KEY, cursor.to_json(), now)
            self.state.delete(IN_FLIGHT_KEY)
            sent = [] if clear_sent else self.sent()
            if sent_minute is not None:
                sent = [*sent, (sent_minute, now.isoformat())][-MAX_SENT_ENTRIES:]
            self.state.set(SENT_KEY, sent, now)

    def forget_sent_through(self, sent_at: str, now: datetime) -> None:
        self.state.set(SENT_KEY, [(m, at) for m, at in self.sent() if at > sent_at], now)
