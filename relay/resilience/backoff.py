"""How long to wait before the next attempt: exponential backoff with full jitter, or a pause."""

from __future__ import annotations

import random
from typing import Protocol


class Delays(Protocol):
    """Seconds to wait after failed attempt number ``attempt`` (0-based); ``cap`` the longest."""

    cap: float

    def delay(self, attempt: int) -> float: ...


class Backoff:
    """Exponential backoff with full jitter: ``uniform(0, min(cap, base * 2**attempt))``.

    Full jitter spreads retries of many records evenly, so a recovering API is not hit by a
    synchronised wave (AWS architecture blog, "Exponential Backoff and Jitter").
    """

    def __init__(self, base: float, cap: float, rng: random.Random | None = None) -> None:
        if base <= 0 or cap <= 0:
            raise ValueError("backoff base and cap must be > 0")
        self.base = base
        self.cap = cap
        self._rng = rng or random.Random()

    def ceiling(self, attempt: int) -> float:
        # The exponent is bounded so a long outage never overflows a float.
        return min(self.cap, self.base * 2 ** min(max(attempt, 0), 64))

    def delay(self, attempt: int) -> float:
        return self._rng.uniform(0, self.ceiling(attempt))

    def __repr__(self) -> str:
        return f"Backoff(base={self.base}, cap={self.cap})"


class FixedDelay:
    """The same pause after every failure (polling something that is expected to come up)."""

    def __init__(self, seconds: float) -> None:
        self.cap = seconds

    def delay(self, attempt: int) -> float:
        return self.cap

    def __repr__(self) -> str:
        return f"FixedDelay({self.cap})"
