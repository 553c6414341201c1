"""The retry loop: deliver one event until the API takes it, refuses it, or the budget runs out.

``Deliverer.deliver`` waits on the circuit breaker before every attempt, so while the API is down
records pause instead of burning their budget. Per failure:

- transient (429, 5xx, network, token endpoint down): a breaker failure, ``RETRIES`` counted,
  sleep ``max(full-jitter backoff, Retry-After)``, try again. The budget is the wall time of
  failing attempts and their sleeps while the circuit stays closed: never the time waiting for an
  open circuit, nor failed probes, nor the failure that opened it, so a long outage dead-letters
  nothing. Once the next retry would end past the budget:
  ``Rejection("deliver", "retries-exhausted")`` naming the last cause.
- systemic (403, 404 on /events, repeated 401, bad credentials): a breaker failure, retried slowly
  (at the backoff cap) and forever: no record is dead-lettered because the relay is misconfigured.
  ``SYSTEMIC_ERRORS`` is counted by the client where the answer is seen.
- ``Rejection`` from the client (a 4xx for this event): propagates; the API did answer, so it
  counts as a breaker success.

Cancellation propagates at once; a cancelled probe frees the breaker for another caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol

from relay.errors import Rejection, SystemicError, TransientError
from relay.metrics import EVENTS_SENT, RETRIES
from relay.timeback.client import SendResult
from relay.timeback.policy import (
    ApiSystemicError,
    ApiTransientError,
    Backoff,
    CircuitBreaker,
    CircuitState,
)

log = logging.getLogger(__name__)

ENDPOINT = "events"


class EventSender(Protocol):
    async def send_event(self, payload: bytes, *, event_type: str) -> SendResult: ...


class Deliverer:
    """Retries ``client.send_event`` under a shared circuit breaker and a per-event budget."""

    def __init__(
        self,
        client: EventSender,
        breaker: CircuitBreaker,
        backoff: Backoff,
        budget: float,
        retry_after_cap: float,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.breaker = breaker
        self.backoff = backoff
        self.budget = budget
        self.retry_after_cap = retry_after_cap
        self._sleep = sleep
        self._clock = clock

    async def deliver(self, payload: bytes, *, event_type: str) -> SendResult:
        spent = 0.0  # seconds of failing attempts and backoff sleeps, circuit waits excluded
        attempt = 0
        while True:
            await self.breaker.wait_allowed()
            started = self._clock()
            verdict = False
            try:
                result = await self._client.send_event(payload, event_type=event_type)
                verdict = True
                self.breaker.record_success()
            except Rejection:
                verdict = True
                self.breaker.record_success()  # the API is up: it answered about this event
                EVENTS_SENT.labels(type=event_type, outcome="rejected").inc()
                raise
            except TransientError as exc:
                verdict = True
                self.breaker.record_failure()
                delay = self._transient_delay(exc, attempt)
                # Only retries under a closed circuit spend the budget: a failed probe, or a
                # failure that opened the circuit, is the outage's fault, not this record's.
                if self.breaker.state is CircuitState.CLOSED:
                    spent += self._clock() - started
                    if spent + delay > self.budget:
                        raise self._exhausted(exc, attempt + 1, spent) from None
                    spent += delay
                await self._sleep(delay)
            except SystemicError as exc:
                verdict = True
                self.breaker.record_failure()
                log.error("systemic failure, retrying slowly: %s", exc)
                await self._sleep(max(self.backoff.cap, self.backoff.delay(attempt)))
            else:
                EVENTS_SENT.labels(type=event_type, outcome=result.outcome.value).inc()
                return replace(result, attempts=attempt + 1)
            finally:
                if not verdict:  # cancelled (or an unexpected error) mid-attempt
                    self.breaker.abandon()
            attempt += 1

    def _transient_delay(self, exc: TransientError, attempt: int) -> float:
        endpoint, cause = _labels(exc)
        RETRIES.labels(endpoint=endpoint, cause=cause).inc()
        retry_after = min(exc.retry_after or 0.0, self.retry_after_cap)
        return max(self.backoff.delay(attempt), retry_after)

    def _exhausted(self, exc: TransientError, attempts: int, spent: float) -> Rejection:
        endpoint, cause = _labels(exc)
        return Rejection(
            "deliver",
            "retries-exhausted",
            f"gave up after {attempts} attempts and {spent:.1f} s of retries"
            f" (budget {self.budget:g} s); last failure: {endpoint} {cause}: {exc}",
        )

    def __repr__(self) -> str:
        return f"Deliverer(budget={self.budget:g}, {self.backoff!r}, {self.breaker!r})"


def _labels(exc: TransientError | SystemicError) -> tuple[str, str]:
    if isinstance(exc, ApiTransientError):
        return exc.endpoint, exc.cause
    if isinstance(exc, ApiSystemicError):
        return exc.endpoint, str(exc.status)
    return ENDPOINT, "other"
