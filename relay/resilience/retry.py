"""``Retry``: run one step until it answers, is refused, or the budget runs out.

Every retrying caller of the relay is a ``Retry`` with its own settings:

- ``classify`` turns each exception into a ``Verdict``: RETRY (transient: back off, honour a
  capped ``Retry-After``, spend the budget), RETRY_SLOWLY (systemic: at the backoff cap, forever,
  no budget; the service did answer, so to the breaker it is no failure: a few records refused
  this way never hold the circuit open for everyone else), ANSWERED (the service refused this
  request: a breaker success, raised on), RAISE
  (not a failure of the service: raised on, no breaker verdict). Per-status decisions plug in here.
- ``breaker`` (optional): waited on before each attempt, told each verdict; an attempt that ends
  without one (cancelled) frees it for another caller.
- ``rate`` (optional): a ``FailureRate`` told of each answer (ok) and transient failure, shared
  by every caller, so a brownout shows as a rate even when no run of failures opens the breaker.
- ``budget`` (optional): seconds of failing attempts and their sleeps. While ``budget.paused()``
  (delivery: ``api_unhealthy``, the breaker not closed or the failure rate high) nothing is spent,
  so neither an outage nor a brownout dead-letters anything.
  Once the next retry would end past it: ``RetriesExhausted``.
- ``on_failure`` is told of each failure before the sleep (metrics, logs, health).
- ``attempts``, an ``Attempts`` record passed to ``run``, counts the attempts and notes the first
  failure: a record's dead letter says how often and since when it was tried.
"""

from __future__ import annotations

import asyncio
import enum
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from relay.errors import RelayError, SystemicError, TransientError
from relay.resilience.backoff import Delays
from relay.resilience.breaker import CircuitBreaker, CircuitState
from relay.resilience.rate import FailureRate

T = TypeVar("T")


class Verdict(enum.Enum):
    RETRY = "retry"
    RETRY_SLOWLY = "retry-slowly"
    ANSWERED = "answered"
    RAISE = "raise"


def transient_or_systemic(exc: BaseException) -> Verdict:
    """The relay's error hierarchy as verdicts: transient retried, systemic retried slowly."""
    if isinstance(exc, TransientError):
        return Verdict.RETRY
    if isinstance(exc, SystemicError):
        return Verdict.RETRY_SLOWLY
    return Verdict.RAISE


@dataclass
class Attempts:
    """How often one operation was attempted, and when (Unix time) it first failed."""

    count: int = 0
    first_failure: float | None = None

    def failed(self) -> None:
        if self.first_failure is None:
            self.first_failure = time.time()


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt as ``on_failure`` sees it; ``attempt`` is 0-based."""

    error: Exception
    verdict: Verdict
    delay: float
    attempt: int


@dataclass
class Budget:
    """Seconds a step may spend failing; nothing is spent while ``paused()``."""

    seconds: float
    paused: Callable[[], bool] = field(default=lambda: False)


class RetriesExhausted(RelayError):
    """The budget ran out; ``last`` is the final failure, ``attempts`` and ``spent`` the cost."""

    def __init__(
        self, last: Exception, attempts: int, spent: float, budget: float, label: str
    ) -> None:
        super().__init__(
            f"gave up after {attempts} attempts and {spent:.1f} s of retries"
            f" (budget {budget:g} s); last failure: {label}: {last}"
        )
        self.last = last
        self.attempts = attempts
        self.spent = spent


@dataclass
class Retry:
    delays: Delays
    classify: Callable[[BaseException], Verdict] = transient_or_systemic
    breaker: CircuitBreaker | None = None
    budget: Budget | None = None
    rate: FailureRate | None = None
    retry_after_cap: float = math.inf  # 0 ignores Retry-After
    on_failure: Callable[[Failure], None] | None = None
    label: Callable[[Exception], str] = lambda exc: type(exc).__name__  # names the last failure
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic

    async def run(self, step: Callable[[], Awaitable[T]], attempts: Attempts | None = None) -> T:
        """``await step()`` until it returns; raises what the verdicts say to raise."""
        attempts = attempts if attempts is not None else Attempts()
        spent = 0.0
        attempt = 0
        while True:
            if self.breaker is not None:
                await self.breaker.wait_allowed()
            attempts.count += 1
            started = self.clock()
            verdict: Verdict | None = None
            try:
                result = await step()
                verdict = Verdict.ANSWERED
                self._answered()
                return result
            except Exception as exc:
                attempts.failed()
                verdict = self.classify(exc)
                if verdict is Verdict.RAISE:
                    verdict = None  # no verdict on the service: the breaker is freed below
                    raise
                if verdict is Verdict.ANSWERED:
                    self._answered()
                    raise
                delay = self._failed(exc, verdict, attempt)
                if verdict is Verdict.RETRY and self._charging():
                    spent += self.clock() - started
                    if spent + delay > self._seconds:
                        raise self._exhausted(exc, attempt + 1, spent) from None
                    spent += delay
                await self.sleep(delay)
            finally:
                if verdict is None and self.breaker is not None:  # cancelled mid-attempt
                    self.breaker.abandon()
            attempt += 1

    def _charging(self) -> bool:
        return self.budget is not None and not self.budget.paused()

    @property
    def _seconds(self) -> float:
        return self.budget.seconds if self.budget is not None else math.inf

    def _exhausted(self, exc: Exception, attempts: int, spent: float) -> RetriesExhausted:
        return RetriesExhausted(exc, attempts, spent, self._seconds, self.label(exc))

    def _answered(self) -> None:
        if self.breaker is not None:
            self.breaker.record_success()
        if self.rate is not None:
            self.rate.record(ok=True)

    def _failed(self, exc: Exception, verdict: Verdict, attempt: int) -> float:
        if verdict is Verdict.RETRY_SLOWLY:
            if self.breaker is not None:  # an answer, if a refusal: the service is up
                self.breaker.record_success()
        else:
            if self.breaker is not None:
                self.breaker.record_failure()
            if self.rate is not None:
                self.rate.record(ok=False)
        delay = self._delay(exc, verdict, attempt)
        if self.on_failure is not None:
            self.on_failure(Failure(exc, verdict, delay, attempt))
        return delay

    def _delay(self, exc: Exception, verdict: Verdict, attempt: int) -> float:
        backoff = self.delays.delay(attempt)
        if verdict is Verdict.RETRY_SLOWLY:
            return max(self.delays.cap, backoff)
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        return max(backoff, min(retry_after or 0.0, self.retry_after_cap))


def api_unhealthy(breaker: CircuitBreaker, rate: FailureRate) -> Callable[[], bool]:
    """The delivery budget's pause: the circuit is not closed, or too many attempts of all
    records failed lately. Only a record failing while the others get through spends budget."""
    return lambda: breaker.state is not CircuitState.CLOSED or rate.unhealthy()
