"""How the API is doing by rate: the share of failed attempts over the last seconds, shared by
every record. A breaker sees runs of failures; a brownout (40 % of requests failing, the rest
succeeding) never makes a run, but its rate is plain here."""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class FailureRate:
    """Failed / all attempts within the last ``window`` seconds, kept in one-second buckets.

    ``unhealthy`` once at least ``min_attempts`` were seen in the window and at least
    ``threshold`` of them failed. Attempts are what the API answered or failed to answer;
    the caller decides what counts (delivery: transient failures and answers).
    """

    def __init__(
        self,
        threshold: float = 0.2,
        window: float = 30.0,
        *,
        min_attempts: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 < threshold <= 1 or window <= 0 or min_attempts < 1:
            raise ValueError("threshold in (0, 1], window > 0 and min_attempts >= 1 required")
        self.threshold = threshold
        self.window = window
        self.min_attempts = min_attempts
        self._clock = clock
        self._buckets: deque[list[int]] = deque()  # [second, attempts, failures]
        self._attempts = 0
        self._failures = 0

    def record(self, ok: bool) -> None:
        second = math.floor(self._clock())
        buckets = self._buckets
        if not buckets or buckets[-1][0] != second:
            # a new second: what left the window goes (within a second nothing more can)
            self._expire(second)
            buckets.append([second, 0, 0])
        bucket = buckets[-1]
        bucket[1] += 1
        self._attempts += 1
        if not ok:
            bucket[2] += 1
            self._failures += 1

    @property
    def rate(self) -> float:
        """Failed share of the window's attempts (0 when there were none)."""
        self._expire(math.floor(self._clock()))
        return self._failures / self._attempts if self._attempts else 0.0

    def unhealthy(self) -> bool:
        rate = self.rate  # expires old buckets first
        return self._attempts >= self.min_attempts and rate >= self.threshold

    def _expire(self, second: int) -> None:
        oldest = second - math.ceil(self.window) + 1
        while self._buckets and self._buckets[0][0] < oldest:
            _, attempts, failures = self._buckets.popleft()
            self._attempts -= attempts
            self._failures -= failures

    def __repr__(self) -> str:
        return (
            f"FailureRate(rate={self.rate:.2f}, attempts={self._attempts}, "
            f"threshold={self.threshold}, window={self.window:g})"
        )
