"""``Retry``: run one step until it answers, is refused, or the budget runs out.

Every retrying caller of the relay is a ``Retry`` with its own settings:

- ``classify`` turns each exception into a ``Verdict``: RETRY (transient: back off, honour a
  capped ``Retry-After``, spend the budget), RETRY_OWN (transient, but the service took other
  requests meanwhile: this request's own failure, so a breaker success, and the budget is
  spent), WAIT (transient, and nothing
  shows the service works for anyone: a breaker failure, no budget spent: an outage is waited
  out), RETRY_SLOWLY (systemic: at the backoff cap, forever,
  no budget; the service did answer, so to the breaker it is no failure: a few records refused
  this way never hold the circuit open for everyone else), ANSWERED (the service refused this
  request: a breaker success, raised on), RAISE
  (not a failure of the service: raised on, no breaker verdict). Per-status decisions plug in here.
- ``breaker`` (optional): waited on before each attempt, told each verdict; an attempt that ends
  without one (cancelled) frees it for another caller.
- ``rate`` (optional): a ``FailureRate`` told of each answer (ok) and of the first transient
  failure of each ``run`` (a share of requests: one request failing again and again is no
  brownout), shared by every caller, so a brownout shows as a rate even when no run of failures
  opens the breaker.
- ``budget`` (optional): seconds of failing attempts and their sleeps. While ``budget.paused()``
  (delivery: ``api_unhealthy``, the breaker not closed or the failure rate high) nothing is spent,
  so neither an outage nor a brownout dead-letters anything.
  Once the next retry would end past it: ``RetriesExhausted``.
- ``on_failure`` is told of each failure before the sleep (metrics, logs, health), and whether
  it was charged to the budget.
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
    RETRY_OWN = "retry-own"
    WAIT = "wait"
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
    charged: bool = False  # spent budget: the step is on its way to an answer or exhaustion


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

    async def run(
        self,
        step: Callable[[], Awaitable[T]],
        attempts: Attempts | None = None,
        *,
        failed: Exception | None = None,
        started: float = 0.0,
    ) -> T:
        """``await step()`` until it returns; raises what the verdicts say to raise.

        ``failed``: the caller made the first attempt itself (counted in ``attempts``, begun at
        ``started``, ``clock`` time) and it raised this; it is judged as if ``step`` had."""
        attempts = attempts if attempts is not None else Attempts()
        run: _Run | None = None  # made by the first failure
        if failed is not None:
            run = _Run()
            await self._failed(failed, started, run, attempts)
        timed = self.budget is not None  # only a budget needs an attempt's start
        while True:
            if self.breaker is not None and self.breaker.state is not CircuitState.CLOSED:
                await self.breaker.wait_allowed()  # closed: it would return at once
            attempts.count += 1
            started = self.clock() if timed else 0.0
            try:
                result = await step()
            except Exception as exc:
                run = run or _Run()
                await self._failed(exc, started, run, attempts)
                continue
            except BaseException:  # cancelled mid-attempt: no verdict, the breaker is freed
                if self.breaker is not None:
                    self.breaker.abandon()
                raise
            self.answered()
            return result

    async def _failed(self, exc: Exception, started: float, run: _Run, attempts: Attempts) -> None:
        """One failed attempt: raised on, as its verdict says, or told to the breaker, the rate
        and ``on_failure``, charged, and slept off before the next."""
        attempts.failed()
        verdict = self.classify(exc)
        if verdict is Verdict.RAISE:  # no verdict on the service: the breaker is freed
            if self.breaker is not None:
                self.breaker.abandon()
            raise exc
        if verdict is Verdict.ANSWERED:
            self.answered()
            raise exc
        run.failures += 1
        self._tell_services(verdict, first=run.failures == 1)
        delay = self._delay(exc, verdict, run.attempt)
        charged = verdict in _CHARGED and self._charging()
        if self.on_failure is not None:
            self.on_failure(Failure(exc, verdict, delay, run.attempt, charged))
        if charged:
            run.spent += self.clock() - started
            if run.spent + delay > self._seconds:
                raise self._exhausted(exc, run.attempt + 1, run.spent) from None
            run.spent += delay
        await self.sleep(delay)
        run.attempt += 1

    def _charging(self) -> bool:
        return self.budget is not None and not self.budget.paused()

    @property
    def _seconds(self) -> float:
        return self.budget.seconds if self.budget is not None else math.inf

    def _exhausted(self, exc: Exception, attempts: int, spent: float) -> RetriesExhausted:
        return RetriesExhausted(exc, attempts, spent, self._seconds, self.label(exc))

    def answered(self) -> None:
        """The service answered an attempt (a success, or a refusal of this request)."""
        if self.breaker is not None:
            self.breaker.record_success()
        if self.rate is not None:
            self.rate.record(ok=True)

    def _tell_services(self, verdict: Verdict, *, first: bool) -> None:
        """The breaker and the rate hear of one failure as its verdict says; the rate counts a
        run's first failure only (it is a share of requests, so one request retried many times
        is no brownout)."""
        if verdict in (Verdict.RETRY_SLOWLY, Verdict.RETRY_OWN):
            if self.breaker is not None:  # the service works (it answered, or took others)
                self.breaker.record_success()
        elif self.breaker is not None:
            self.breaker.record_failure()
        if self.rate is not None and verdict is not Verdict.RETRY_SLOWLY and first:
            self.rate.record(ok=False)

    def _delay(self, exc: Exception, verdict: Verdict, attempt: int) -> float:
        backoff = self.delays.delay(attempt)
        if verdict is Verdict.RETRY_SLOWLY:
            return max(self.delays.cap, backoff)
        retry_after = exc.retry_after if isinstance(exc, TransientError) else None
        return max(backoff, min(retry_after or 0.0, self.retry_after_cap))


class _Run:
    """One ``run``'s failures so far: seconds charged, the next attempt's index (0-based), and
    how many failed (the rate hears of the first only)."""

    __slots__ = ("attempt", "failures", "spent")

    def __init__(self) -> None:
        self.spent = 0.0
        self.attempt = 0
        self.failures = 0


# The verdicts whose failures spend the budget (WAIT and RETRY_SLOWLY never do).
_CHARGED = frozenset({Verdict.RETRY, Verdict.RETRY_OWN})


def api_unhealthy(breaker: CircuitBreaker, rate: FailureRate) -> Callable[[], bool]:
    """The delivery budget's pause: the circuit is not closed, or too many attempts of all
    records failed lately. Only a record failing while the others get through spends budget."""
    return lambda: breaker.state is not CircuitState.CLOSED or rate.unhealthy()
