"""Login throttling: per client address, per known browser, and for the account as a whole.

- Per address (`LOGIN_MAX_FAILURES` in `LOGIN_WINDOW_SECONDS`): the address is the one the
  trusted proxies saw (app/client_address.py), so a forged X-Forwarded-For entry neither
  escapes the limit nor spends someone else's.
- For the account (`LOGIN_ACCOUNT_MAX_FAILURES` in the same window): failures from browsers
  that never logged in, whatever their addresses. This caps guessing by a crowd of addresses.
- A browser that logged in before carries a signed device cookie (valid for
  `LOGIN_DEVICE_DAYS`): the account-wide limit does not hold it, only a limit of its own, so a
  stranger filling the account-wide limit cannot lock the admin out of the browser they use
  (the "device cookie" defence in OWASP's guidance on online guessing).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

ACCOUNT = "account"


class LoginThrottle:
    """At most `max_failures` failed logins per key in a sliding window."""

    def __init__(self, max_failures: int, window_s: float, max_clients: int = 10_000) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._failures: OrderedDict[str, list[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float | None = None) -> int | None:
        """Seconds the client must wait before trying again, or None when it may try."""
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent(client, now)
            if len(recent) < self.max_failures:
                return None
            freed_at = recent[len(recent) - self.max_failures] + self.window_s
            return max(1, math.ceil(freed_at - now))

    def record_failure(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            recent = self._recent(client, now)
            recent.append(now)
            # The oldest failures beyond the limit no longer decide anything.
            self._failures[client] = recent[-self.max_failures :]
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)

    def reset(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)

    def _recent(self, client: str, now: float) -> list[float]:
        return [t for t in self._failures.get(client, []) if now - t < self.window_s]


@dataclass(frozen=True)
class Refusal:
    retry_after_s: int
    message: str


class LoginGuard:
    """Decides whether a login may be tried and counts the failures."""

    def __init__(self, max_failures: int, account_max_failures: int, window_s: float) -> None:
        self.per_address = LoginThrottle(max_failures, window_s)
        self.per_device = LoginThrottle(max_failures, window_s)
        self.account = LoginThrottle(account_max_failures, window_s, max_clients=1)

    def refusal(self, address: str, device: str | None) -> Refusal | None:
        wait = self.per_address.retry_after(address)
        if wait is not None:
            return Refusal(wait, f"Too many failed logins. Try again in {wait} s.")
        if device is not None:
            wait = self.per_device.retry_after(device)
            if wait is not None:
                return Refusal(wait, f"Too many failed logins. Try again in {wait} s.")
            return None
        wait = self.account.retry_after(ACCOUNT)
        if wait is not None:
            return Refusal(
                wait,
                "Too many failed logins on the admin account. Log in from a browser you have "
                f"logged in with before, or try again in {wait} s.",
            )
        return None

    def record_failure(self, address: str, device: str | None) -> None:
        self.per_address.record_failure(address)
        if device is not None:
            self.per_device.record_failure(device)
        else:
            self.account.record_failure(ACCOUNT)

    def record_success(self, address: str, device: str | None) -> None:
        self.per_address.reset(address)
        if device is not None:
            self.per_device.reset(device)
