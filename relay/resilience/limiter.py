"""The request rate: a token bucket shared by every request of the process, and a shared pause.

``TokenBucket`` meters requests to ``rate`` per second with ``burst`` saved up. Waiters reserve
their token in arrival order (the bucket may go into debt), so the bucket never spins and a
cancelled waiter hands its token back. After an outage ``restart`` empties it and the rate climbs
linearly from a tenth to the full rate over ``ramp`` seconds: the backlog a pause built up never
leaves as one burst.

``Pause`` is the not-before time one answer sets for everyone: a ``Retry-After`` (or a 429/503
without one) seen by one request holds back every request of the process, not just its own
retry. Knows nothing of HTTP or Kafka; ``relay.resilience.gate`` puts the pieces together.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

RAMP_FLOOR = 0.1  # share of the rate a restarted bucket begins with


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` kept; ``acquire`` waits for one."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        ramp: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1 or ramp < 0:
            raise ValueError("rate must be > 0, burst >= 1 and ramp >= 0")
        self.rate = rate
        self.burst = burst
        self.ramp = ramp
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)  # negative: tokens promised to waiters
        self._stamp = clock()
        self._ramp_from: float | None = None

    @property
    def tokens(self) -> float:
        """Tokens available now (negative while waiters hold reservations)."""
        self._refill()
        return self._tokens

    def current_rate(self) -> float:
        """The rate now: the full rate, or a share of it while climbing after ``restart``."""
        if self._ramp_from is None:
            return self.rate
        elapsed = self._clock() - self._ramp_from
        if self.ramp == 0 or elapsed >= self.ramp:
            self._ramp_from = None
            return self.rate
        return self.rate * max(RAMP_FLOOR, elapsed / self.ramp)

    async def acquire(self) -> float:
        """Take one token, waiting for it if needed; returns the seconds waited."""
        self._refill()
        self._tokens -= 1
        if self._tokens >= 0:
            return 0.0
        wait = -self._tokens / self.current_rate()
        try:
            await self._sleep(wait)
        except asyncio.CancelledError:
            self._tokens += 1  # the reservation is given back to those behind
            raise
        return wait

    def restart(self) -> None:
        """After an outage: nothing saved up, and the rate climbs again from a tenth."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)
        self._ramp_from = self._clock()

    def drain(self) -> None:
        """Drop what was saved up (a pause just ended: its backlog must not leave as a burst)."""
        self._refill()
        self._tokens = min(self._tokens, 0.0)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._stamp
        self._stamp = now
        if elapsed > 0:
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.current_rate())

    def __repr__(self) -> str:
        return f"TokenBucket(rate={self.rate:g}/s, burst={self.burst})"


class Pause:
    """A not-before time shared by every request: ``extend`` it, ``wait`` it out."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self.until = 0.0

    @property
    def remaining(self) -> float:
        return max(0.0, self.until - self._clock())

    def extend(self, seconds: float) -> bool:
        """Hold every request back for ``seconds`` from now (never shortens); True if that
        moved the not-before time."""
        until = self._clock() + seconds
        if until <= self.until:
            return False
        self.until = until
        return True

    async def wait(self) -> float:
        """Return once the pause is over (it may be extended meanwhile); the seconds waited."""
        waited = 0.0
        while (remaining := self.remaining) > 0:
            await self._sleep(remaining)
            waited += remaining
        return waited

    def __repr__(self) -> str:
        return f"Pause(remaining={self.remaining:.2f})"
