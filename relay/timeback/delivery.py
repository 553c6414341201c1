"""Delivery: one event, retried until the API takes it, refuses it, or the budget runs out.

``Deliverer.deliver`` is ``client.send_event`` under a ``relay.resilience.Retry`` with the
circuit breaker and a failure rate shared by every record, so while the API is down or browning
out records pause instead of burning their budget. Per failure:

- transient (429, 5xx, network, timeout, token endpoint down): ``RETRIES`` counted, sleep
  ``max(full-jitter backoff, Retry-After)``, try again. What the failure says about the API
  depends on the evidence (docs/reliability.md, "one event the API keeps failing"):

  - the API took another request since this attempt began: the failure is this request's own
    (``Verdict.RETRY_OWN``): a breaker success, and the attempt and its sleep are charged to
    the budget, unless the API is unhealthy by rate (``RELAY_BROWNOUT_RATE`` of the requests
    over ``RELAY_BROWNOUT_WINDOW`` seconds failing, each request counted once: a brownout) or
    the circuit is not closed;
  - no such request yet (``relay.timeback.evidence``): while other requests are in flight, up
    to ``EVIDENCE_WAIT`` seconds for one of them to be taken; else a **canary** goes out, the
    last event the API accepted sent again (the API keeps an event id once: the answer is a 2xx
    or a 409, nothing is added), one at a time, and neither while the circuit is open nor in a
    brownout (when it would change nothing). Taken: as above. Else (``Verdict.WAIT``): a
    breaker failure and a failure in the rate, no budget spent: the API may be down.

  So the budget measures "this event failed while the API took others", whatever other traffic
  there is, and nothing is dead-lettered because the API is down or browning out. Once the next
  retry would end past the budget: ``RetriesExhausted`` naming the last cause
  (``deliver/retries-exhausted``).
- systemic (403, 404 on /events, 3xx, a second 401): the API answered, so no breaker failure; the
  event is held, retried slowly (at the backoff cap), counted in ``EVENTS_HELD`` and reported to
  Health (``api_accepting`` false: /readyz 503 with the answer as reason). When the API accepted
  an event sent after this one's first systemic answer, the answer is this event's own, not the
  relay's: at the next systemic answer it becomes ``RequestRejected`` (``deliver/api-rejected``
  with the status). Otherwise (every request refused) it is held forever: no record is
  dead-lettered because the relay is misconfigured.
- ``RequestRejected`` (a 4xx for this event): propagates; the API did answer, so it counts as a
  breaker success.

``deliver_envelope`` is the same for one request carrying several events (an envelope built by
``relay.timeback.envelopes``): every rule above applies to the request as a whole, except that
its budget is nil: the first charged failure (it failed while the API took others) raises
``RetriesExhausted``, and the batcher splits it, so one bad event never holds N records for a
whole budget. A delivered envelope counts each of its events in ``EVENTS_SENT``, a refused one
none (its events are sent again in smaller requests, and counted there).

``health`` hears of each charged failure (``Health.spending``): a record spending its budget is
on its way to the API or the DLQ within that budget, so liveness does not count it as a stall.

Cancellation propagates at once; a cancelled probe frees the breaker for another caller.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import replace
from typing import Any

from relay.health import Condition, Health
from relay.metrics import API_FAILURE_RATE, EVENTS_HELD, EVENTS_SENT_BY, RETRIES_BY
from relay.resilience import (
    Attempts,
    Backoff,
    Budget,
    CircuitBreaker,
    CircuitState,
    Failure,
    FailureRate,
    Retry,
    Verdict,
    transient_or_systemic,
)
from relay.resilience.retry import api_unhealthy
from relay.timeback.client import SendResult
from relay.timeback.errors import (
    ApiSystemicError,
    ApiTransientError,
    EventRejected,
    RequestRejected,
)
from relay.timeback.evidence import EventSender, Evidence, Hold
from relay.timeback.responses import Outcome

log = logging.getLogger(__name__)

ENDPOINT = "events"


class Deliverer:
    """Retries ``client.send_event`` under a shared circuit breaker and failure rate, and a
    per-event budget; tells ``health`` of events held by a systemic answer."""

    def __init__(
        self,
        client: EventSender,
        breaker: CircuitBreaker,
        backoff: Backoff,
        budget: float,
        retry_after_cap: float,
        *,
        rate: FailureRate | None = None,
        health: Health | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        canary_after: float | None = None,
    ) -> None:
        self._client = client
        self.breaker = breaker
        self.backoff = backoff
        self.budget = budget
        self.rate = rate if rate is not None else FailureRate(clock=clock)
        # A canary is an event the API already took, sent again: a duplicate there. It goes out
        # only once a request has failed with no other evidence for this long, a quarter of the
        # budget (at most the backoff cap): a blip at the tail of a backlog clears before then,
        # and a lone bad event is still dead-lettered within 1.25 x its budget.
        wait = min(budget / 4, backoff.cap) if canary_after is None else canary_after
        self.evidence = Evidence(client, breaker, self.rate, wait, clock)
        self._health = health
        self._clock = clock
        self._held: Counter[int] = Counter()  # events held, by systemic status
        API_FAILURE_RATE.set_function(lambda: self.rate.rate)
        paused = api_unhealthy(breaker, self.rate)
        self.retry = Retry(
            backoff,
            classify=_verdict,
            breaker=breaker,
            budget=Budget(budget, paused=paused),
            rate=self.rate,
            retry_after_cap=retry_after_cap,
            on_failure=self._failed,
            label=lambda exc: " ".join(_labels(exc)),
            sleep=sleep,
            clock=clock,
        )
        # An envelope failing while the API takes others is split at once (see the docstring).
        self._envelope_retry = replace(self.retry, budget=Budget(0.0, paused=paused))

    def deliver(
        self, payload: bytes, *, event_type: str, attempts: Attempts | None = None
    ) -> Coroutine[Any, Any, SendResult]:
        """Send until taken; ``attempts`` (the record's) counts every attempt made. Counted in
        EVENTS_SENT by ``event_type`` and outcome, a refusal as "rejected"."""
        return self._deliver(payload, event_type, 1, attempts, sent=event_type)

    async def deliver_envelope(
        self,
        payload: bytes,
        *,
        event_types: Sequence[str],
        attempts: Attempts | None = None,
        canary: bytes | None = None,
    ) -> SendResult:
        """Send one envelope of ``len(event_types)`` events until taken; counted per event
        type only when DELIVERED (a refused or duplicate envelope is the caller's to split).
        ``canary``: one of its events alone, kept as the canary if the envelope is taken."""
        what = f"envelope of {len(event_types)} events"
        result = await self._deliver(
            payload, what, len(event_types), attempts, retry=self._envelope_retry, canary=canary
        )
        if result.outcome is Outcome.DELIVERED:
            for event_type in event_types:
                EVENTS_SENT_BY(event_type, result.outcome.value).inc()
        return result

    async def _deliver(
        self,
        payload: bytes,
        what: str,
        events: int,
        attempts: Attempts | None,
        *,
        retry: Retry | None = None,
        canary: bytes | None = None,
        sent: str | None = None,
    ) -> SendResult:
        """The first attempt made here while the circuit is closed: taken, it costs none of what
        a failure needs (a hold, a step for ``Retry.run``, its bookkeeping); else, or once it
        failed, ``Retry.run`` goes on (judging that first failure as its own). ``sent``: the
        event type to count in EVENTS_SENT (one event), None for an envelope (the caller's)."""
        attempts = attempts if attempts is not None else Attempts()
        retry = retry or self.retry
        failed: Exception | None = None
        started = 0.0
        if self.breaker.state is CircuitState.CLOSED:
            attempts.count += 1
            started = self._clock()  # what a failure is charged from
            evidence = self.evidence
            evidence.begun = begun = evidence.begun + 1
            evidence.sending += 1
            try:
                result = await self._client.send_event(payload, event_type=what)
            except Exception as exc:
                failed = exc
            finally:
                evidence.sending -= 1
            if failed is None:
                if canary is None:
                    evidence.accepted(begun, payload, what)
                else:
                    evidence.accepted(begun, canary, "event")
                retry.answered()
                if sent is not None:  # the outcome a StrEnum: the member is its label value
                    EVENTS_SENT_BY(sent, result.outcome).inc()
                return result
        else:
            begun = 0
        before = attempts.count - (failed is not None)
        hold = Hold(events=events)
        kept = (canary, "event") if canary is not None else (payload, what)
        try:
            if failed is not None:
                failed = await self._explained(failed, begun, started, hold, what)
            result = await retry.run(
                lambda: self._attempt(payload, what, hold, kept),
                attempts,
                failed=failed,
                started=started,
            )
        except RequestRejected:
            if sent is not None:
                EVENTS_SENT_BY(sent, "rejected").inc()
            raise
        finally:
            self._release(hold)
        if sent is not None:
            EVENTS_SENT_BY(sent, result.outcome.value).inc()
        made = attempts.count - before
        if result.attempts == made:  # the first attempt's result, as it is: nothing to copy
            return result
        return replace(result, attempts=made)

    async def _attempt(
        self, payload: bytes, what: str, hold: Hold, canary: tuple[bytes, str]
    ) -> SendResult:
        """A retry (the first attempt is ``_deliver``'s)."""
        started = self._clock()
        evidence = self.evidence
        evidence.begun = begun = evidence.begun + 1
        evidence.sending += 1
        try:
            # ``event_type`` only names the request in messages: "the envelope of 20 events"
            result = await self._client.send_event(payload, event_type=what)
        except Exception as exc:
            failed = exc
        else:
            evidence.accepted(begun, *canary)
            return result
        finally:
            evidence.sending -= 1
        raise await self._explained(failed, begun, started, hold, what)

    async def _explained(
        self, exc: Exception, begun: int, started: float, hold: Hold, what: str
    ) -> Exception:
        """What a failed attempt (number ``begun``, from ``started``) is to raise: a refusal
        noted as an answer; a systemic answer judged (``_judge``); a transient failure with
        whether the API took others meanwhile (``Evidence``); the rest as it is."""
        if isinstance(exc, RequestRejected):
            self.evidence.answered(begun)
        elif isinstance(exc, ApiSystemicError):
            if exc.endpoint == ENDPOINT:  # the token endpoint refusing the relay: systemic
                return self._judge(exc, hold, what)
        elif isinstance(exc, ApiTransientError) and exc.endpoint == ENDPOINT:
            exc.others_accepted = await self.evidence.others_accepted(begun, started, hold)
        return exc

    def _judge(self, exc: ApiSystemicError, hold: Hold, event_type: str) -> Exception:
        """The systemic answer as the relay's problem (held), or, once the API has taken an
        event sent after this one's first such answer, as this event's own (rejected)."""
        if hold.since is None:
            hold.since, hold.status = self.evidence.begun, exc.status or 0
            self._hold(hold.status, hold.events, str(exc))
            return exc
        if self.evidence.answered_from > hold.since:
            return EventRejected(
                f"the API answered HTTP {exc.status} for this {event_type} alone (it accepted "
                f"other events meanwhile): {exc}",
                status=exc.status or 0,
                body="",
            )
        return exc

    def _hold(self, status: int, events: int, why: str) -> None:
        self._held[status] += events
        EVENTS_HELD.labels(status=str(status)).set(self._held[status])
        self._report(status, f"{self._held[status]} event(s) held: {why}")

    def _release(self, hold: Hold) -> None:
        if hold.status is None:
            return
        self._held[hold.status] -= hold.events
        EVENTS_HELD.labels(status=str(hold.status)).set(self._held[hold.status])
        if self._held[hold.status] <= 0:
            del self._held[hold.status]
            self._report(hold.status, None)

    def _report(self, status: int, why: str | None) -> None:
        if self._health is not None:
            ok = why is None
            self._health.report(Condition.API_ACCEPTING, ok, why or "", source=f"events:{status}")

    def _failed(self, failure: Failure) -> None:
        if failure.verdict is Verdict.RETRY_SLOWLY:
            log.error("systemic failure, retrying slowly: %s", failure.error)
            return
        endpoint, cause = _labels(failure.error)
        RETRIES_BY(endpoint, cause).inc()
        if failure.charged and self._health is not None:
            self._health.spending()

    def __repr__(self) -> str:
        return (
            f"Deliverer(budget={self.budget:g}, {self.backoff!r}, {self.breaker!r}, {self.rate!r})"
        )


def _verdict(exc: BaseException) -> Verdict:
    if isinstance(exc, RequestRejected):
        return Verdict.ANSWERED  # the API is up: it answered about this event
    if isinstance(exc, ApiTransientError) and exc.others_accepted:
        return Verdict.RETRY_OWN  # it took others meanwhile: this request's own failure
    verdict = transient_or_systemic(exc)
    return Verdict.WAIT if verdict is Verdict.RETRY else verdict  # maybe an outage: no budget


def _labels(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, ApiTransientError):
        return exc.endpoint, exc.cause
    if isinstance(exc, ApiSystemicError):
        return exc.endpoint, str(exc.status)
    return ENDPOINT, "other"
