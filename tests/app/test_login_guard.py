"""The login guard's rules, and the client address it keys on."""

from __future__ import annotations

import time

import pytest

from app.client_address import client_address, forwarded_entries
from app.login_throttle import LoginGuard


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    return now


def test_the_account_wide_limit_caps_a_crowd_and_lets_go_after_the_window(
    clock: list[float],
) -> None:
    guard = LoginGuard(max_failures=5, account_max_failures=3, window_s=300)
    for n in range(3):
        assert guard.refusal(f"10.0.0.{n}", None) is None
        guard.record_failure(f"10.0.0.{n}", None)

    refusal = guard.refusal("10.0.0.99", None)
    assert refusal is not None and refusal.retry_after_s == 300
    assert "browser you have logged in with before" in refusal.message
    assert guard.refusal("10.0.0.99", "known-device") is None

    clock[0] += 300  # a stranger who stops cannot hold the account any longer
    assert guard.refusal("10.0.0.99", None) is None


def test_a_known_browser_has_a_limit_of_its_own(clock: list[float]) -> None:
    guard = LoginGuard(max_failures=2, account_max_failures=100, window_s=60)
    guard.record_failure("10.0.0.1", "device-a")
    guard.record_failure("10.0.0.2", "device-a")

    assert guard.refusal("10.0.0.3", "device-a") is not None
    assert guard.refusal("10.0.0.3", "device-b") is None
    assert guard.refusal("10.0.0.3", None) is None  # its failures are not the account's


@pytest.mark.parametrize(
    ("headers", "hops", "address"),
    [
        ([(b"x-forwarded-for", b"1.1.1.1, 2.2.2.2, 3.3.3.3")], 2, "2.2.2.2"),
        (
            [(b"x-forwarded-for", b"6.6.6.6, 7.7.7.7"), (b"x-forwarded-for", b"3.3.3.3")],
            2,
            "7.7.7.7",
        ),
        ([(b"x-forwarded-for", b"2.2.2.2")], 2, "2.2.2.2"),  # skipped a proxy
        ([(b"x-forwarded-for", b"1.1.1.1, 2.2.2.2")], 0, "9.9.9.9"),  # no proxy: the peer
        ([], 2, "9.9.9.9"),
    ],
)
def test_the_client_is_the_entry_the_farthest_trusted_proxy_wrote(
    headers: list[tuple[bytes, bytes]], hops: int, address: str
) -> None:
    assert client_address("9.9.9.9", forwarded_entries(headers), hops) == address
