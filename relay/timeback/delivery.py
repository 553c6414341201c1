"""Delivery: one event, retried until the API takes it, refuses it, or the budget runs out.

``Deliverer.deliver`` is ``client.send_event`` under a ``relay.resilience.Retry`` with the
circuit breaker, so while the API is down records pause instead of burning their budget. Per
failure:

- transient (429, 5xx, network, token endpoint down): a breaker failure, ``RETRIES`` counted,
  sleep ``max(full-jitter backoff, Retry-After)``, try again. The budget is the wall time of
  failing attempts and their sleeps while the circuit stays closed: never the time waiting for an
  open circuit, nor failed probes, nor the failure that opened it, so a long outage dead-letters
  nothing. Once the next retry would end past the budget: ``RetriesExhausted`` naming the last
  cause (the pipeline dead-letters it as ``deliver/retries-exhausted``).
- systemic (403, 404 on /events, repeated 401, bad credentials): a breaker failure, retried slowly
  (at the backoff cap) and forever: no record is dead-lettered because the relay is misconfigured.
  ``SYSTEMIC_ERRORS`` is counted by the client where the answer is seen.
- ``RequestRejected`` (a 4xx for this event): propagates; the API did answer, so it counts as a
  breaker success.

Cancellation propagates at once; a cancelled probe frees the breaker for another caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Protocol

from relay.metrics import EVENTS_SENT, RETRIES
from relay.resilience import (
    Attempts,
    Backoff,
    Budget,
    CircuitBreaker,
    Failure,
    Retry,
    Verdict,
    transient_or_systemic,
)
from relay.resilience.retry import breaker_open
from relay.timeback.client import SendResult
from relay.timeback.errors import ApiSystemicError, ApiTransientError, RequestRejected

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
        self.retry = Retry(
            backoff,
            classify=_verdict,
            breaker=breaker,
            budget=Budget(budget, paused=breaker_open(breaker)),
            retry_after_cap=retry_after_cap,
            on_failure=_count,
            label=lambda exc: " ".join(_labels(exc)),
            sleep=sleep,
            clock=clock,
        )

    async def deliver(
        self, payload: bytes, *, event_type: str, attempts: Attempts | None = None
    ) -> SendResult:
        """Send until taken; ``attempts`` (the record's) counts every attempt made."""
        attempts = attempts if attempts is not None else Attempts()
        before = attempts.count
        try:
            result = await self.retry.run(
                lambda: self._client.send_event(payload, event_type=event_type), attempts
            )
        except RequestRejected:
            EVENTS_SENT.labels(type=event_type, outcome="rejected").inc()
            raise
        EVENTS_SENT.labels(type=event_type, outcome=result.outcome.value).inc()
        return replace(result, attempts=attempts.count - before)

    def __repr__(self) -> str:
        return f"Deliverer(budget={self.budget:g}, {self.backoff!r}, {self.breaker!r})"


def _verdict(exc: BaseException) -> Verdict:
    if isinstance(exc, RequestRejected):
        return Verdict.ANSWERED  # the API is up: it answered about this event
    return transient_or_systemic(exc)


def _count(failure: Failure) -> None:
    if failure.verdict is Verdict.RETRY:
        endpoint, cause = _labels(failure.error)
        RETRIES.labels(endpoint=endpoint, cause=cause).inc()
    else:
        log.error("systemic failure, retrying slowly: %s", failure.error)


def _labels(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ApiTransientError):
        return exc.endpoint, exc.cause
    if isinstance(exc, ApiSystemicError):
        return exc.endpoint, str(exc.status)
    return ENDPOINT, "other"
