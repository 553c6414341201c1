"""FailureRate: the share of failed attempts over a sliding window, with a fake clock."""

from __future__ import annotations

import pytest

from relay.resilience import FailureRate


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_brownout_is_unhealthy_and_a_trickle_of_failures_is_not() -> None:
    clock = Clock()
    rate = FailureRate(0.2, 30, min_attempts=10, clock=clock)
    for i in range(100):
        rate.record(ok=i % 10 != 0)  # 10 % failing
    assert rate.rate == pytest.approx(0.1)
    assert not rate.unhealthy()
    for i in range(100):
        rate.record(ok=i % 10 >= 4)  # then 40 %
    assert rate.unhealthy()


def test_too_few_attempts_say_nothing() -> None:
    rate = FailureRate(0.2, 30, min_attempts=10, clock=Clock())
    for _ in range(9):
        rate.record(ok=False)
    assert not rate.unhealthy()
    rate.record(ok=False)
    assert rate.unhealthy()


def test_old_attempts_leave_the_window() -> None:
    clock = Clock()
    rate = FailureRate(0.2, 30, min_attempts=1, clock=clock)
    for _ in range(50):
        rate.record(ok=False)
    clock.now += 10
    rate.record(ok=True)
    assert rate.unhealthy()  # the failures are still within 30 s
    clock.now += 25
    assert rate.rate == 0.0  # only the success is left
    assert not rate.unhealthy()


@pytest.mark.parametrize(
    "kwargs", [{"threshold": 0}, {"threshold": 1.5}, {"window": 0}, {"min_attempts": 0}]
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="threshold"):
        FailureRate(**kwargs)  # type: ignore[arg-type]
