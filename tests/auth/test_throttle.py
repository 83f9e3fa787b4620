"""Login throttling per (username, client address), with an injected clock."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from trustyard.auth.errors import ThrottledError
from trustyard.auth.throttle import LoginThrottle
from trustyard.config import Settings


class Clock:
    """A settable monotonic clock."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def throttle(clock: Clock) -> LoginThrottle:
    return LoginThrottle(max_failures=3, window=60, clock=clock)


def fail(throttle: LoginThrottle, times: int, user: str = "alice", address: str = "10.0.0.1") -> None:
    for _ in range(times):
        throttle.check(user, address)
        throttle.record_failure(user, address)


def test_attack_brute_force_is_throttled(throttle: LoginThrottle, clock: Clock) -> None:
    fail(throttle, 3)
    with pytest.raises(ThrottledError) as caught:
        throttle.check("alice", "10.0.0.1")
    assert caught.value.retry_after == 60
    assert "alice" not in caught.value.message


def test_below_the_limit_is_allowed(throttle: LoginThrottle) -> None:
    fail(throttle, 2)
    throttle.check("alice", "10.0.0.1")


def test_retry_after_counts_down_and_window_slides(throttle: LoginThrottle, clock: Clock) -> None:
    fail(throttle, 1)
    clock.now += 20
    fail(throttle, 2)
    with pytest.raises(ThrottledError) as caught:
        throttle.check("alice", "10.0.0.1")
    assert caught.value.retry_after == 40
    clock.now += 39.5
    with pytest.raises(ThrottledError):
        throttle.check("alice", "10.0.0.1")
    clock.now += 0.5
    throttle.check("alice", "10.0.0.1")  # the first failure has left the window
    throttle.record_failure("alice", "10.0.0.1")
    with pytest.raises(ThrottledError) as caught:
        throttle.check("alice", "10.0.0.1")
    assert caught.value.retry_after == pytest.approx(20)


def test_failures_older_than_the_window_do_not_count(throttle: LoginThrottle, clock: Clock) -> None:
    fail(throttle, 2)
    clock.now += 61
    fail(throttle, 2)
    throttle.check("alice", "10.0.0.1")


def test_success_resets(throttle: LoginThrottle) -> None:
    fail(throttle, 2)
    throttle.record_success("alice", "10.0.0.1")
    fail(throttle, 2)
    throttle.check("alice", "10.0.0.1")


def test_keys_are_username_and_address(throttle: LoginThrottle) -> None:
    fail(throttle, 3)
    throttle.check("alice", "10.0.0.2")
    throttle.check("bob", "10.0.0.1")
    with pytest.raises(ThrottledError):
        throttle.check("alice", "10.0.0.1")


def test_success_for_another_address_does_not_reset(throttle: LoginThrottle) -> None:
    fail(throttle, 3)
    throttle.record_success("alice", "10.0.0.2")
    with pytest.raises(ThrottledError):
        throttle.check("alice", "10.0.0.1")


def test_many_stale_keys_are_pruned(throttle: LoginThrottle, clock: Clock) -> None:
    for i in range(10_001):
        throttle.record_failure(f"user{i}", "10.0.0.1")
    clock.now += 61
    throttle.record_failure("alice", "10.0.0.1")
    fail(throttle, 2)
    with pytest.raises(ThrottledError):
        throttle.check("alice", "10.0.0.1")
    throttle.check("user0", "10.0.0.1")


def test_thread_safe_counting(clock: Clock) -> None:
    throttle = LoginThrottle(max_failures=400, window=60, clock=clock)

    def worker() -> None:
        for _ in range(50):
            throttle.record_failure("alice", "10.0.0.1")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with pytest.raises(ThrottledError):
        throttle.check("alice", "10.0.0.1")


@pytest.mark.parametrize(("max_failures", "window"), [(0, 60), (3, 0), (3, -1)])
def test_invalid_limits_refused(max_failures: int, window: float) -> None:
    with pytest.raises(ValueError, match="max_failures"):
        LoginThrottle(max_failures=max_failures, window=window)


def test_from_settings(tmp_path: Path) -> None:
    throttle = LoginThrottle.from_settings(Settings(data_dir=tmp_path, login_max_failures=2, login_failure_window=30))
    assert (throttle.max_failures, throttle.window) == (2, 30)
