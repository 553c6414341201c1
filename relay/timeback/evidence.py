"""Evidence: does the API take other requests while this one fails?

The ``Deliverer`` (``relay.timeback.delivery``) asks this of every failed attempt on /events,
because the answer decides what the failure costs. Taken while this one failed: the failure is
the request's own, charged to its budget (a bad event ends in the DLQ). Not taken: the API may be
down, so nothing is charged and nothing is dead-lettered.

Attempts are numbered as they begin (``begin``), canaries too: what the evidence compares is
which began before which, so a success reads no clock. The evidence comes from:

- traffic: while other requests are in flight, up to ``EVIDENCE_WAIT`` seconds for one to be
  taken;
- a **canary**: the last request the API took, sent again (the API keeps an event id once: the
  answer is a 2xx or a 409, nothing is added). One at a time, only once a request has failed
  without evidence for ``canary_after`` seconds, and neither while the circuit is open nor in a
  brownout, when it would change nothing.

docs/reliability.md ("one event the API keeps failing") tells the whole policy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from relay.resilience import CircuitBreaker, CircuitState, FailureRate
from relay.timeback.client import SendResult
from relay.timeback.errors import RequestRejected

log = logging.getLogger(__name__)

# Seconds a failed attempt waits for another request in flight to be taken before it sends a
# canary: under steady traffic the evidence comes by itself, and no event is sent twice.
EVIDENCE_WAIT = 1.0


class EventSender(Protocol):
    async def send_event(self, payload: bytes, *, event_type: str) -> SendResult: ...


@dataclass(slots=True)
class Hold:
    """One request's failures, as the evidence and the systemic answers see them: when the
    first systemic answer came (``since``: how many attempts had begun by then) and its status;
    ``events``: how many events the request carries (what EVENTS_HELD counts); ``own``: a
    failure of it was proven its own; ``probes``: its failures as the half-open probe."""

    since: int | None = None
    status: int | None = None
    events: int = 1
    own: bool = False
    probes: int = 0
    unproven_since: float | None = None  # start of its first failed attempt without evidence


@dataclass(frozen=True, slots=True)
class _Canary:
    """A request the API took: sent again, it shows whether the API takes requests."""

    payload: bytes
    what: str


class Evidence:
    """The attempts of one Deliverer, numbered as they begin, and what the API took of them.

    The Deliverer's first attempt touches ``begun`` and ``sending`` directly (no call on the
    path of a success); everything else goes through the methods."""

    def __init__(
        self,
        client: EventSender,
        breaker: CircuitBreaker,
        rate: FailureRate,
        canary_after: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._breaker = breaker
        self._rate = rate
        self.canary_after = canary_after
        self._clock = clock
        self.begun = 0  # attempts begun so far: the latest one's number
        self.sending = 0  # attempts in flight
        self.answered_from = 0  # the latest-begun attempt the API answered
        self._taken_upto = 0  # ``begun`` when the API last took a request
        # the last request the API took, sent again as proof: its body and name
        self._canary: bytes | None = None
        self._canary_what = ""
        self._proving: asyncio.Future[None] | None = None  # the canary in flight
        self._taken = asyncio.Event()  # set (and replaced) when a request is taken and awaited
        self._awaiting = 0  # attempts waiting on ``_taken``

    def answered(self, begun: int) -> None:
        """The API answered attempt ``begun`` (taken or refused)."""
        if begun > self.answered_from:
            self.answered_from = begun

    def accepted(self, begun: int, canary: bytes | None, what: str = "") -> None:
        """The API took attempt ``begun``; ``canary`` (named ``what``) is kept to send again."""
        if begun > self.answered_from:  # ``answered`` inline: this is every success's path
            self.answered_from = begun
        self._taken_upto = self.begun
        if canary is not None:
            self._canary, self._canary_what = canary, what
        if self._awaiting:  # wakes those waiting for evidence; a fresh event serves the next
            self._taken.set()
            self._taken = asyncio.Event()

    async def others_accepted(self, begun: int, started: float, hold: Hold) -> bool:
        """True when the API took a request since attempt ``begun`` began (at ``started``);
        without one, a canary is sent (or the one in flight awaited) to find out."""
        proven = await self._proven(begun, started, hold)
        hold.own = hold.own or proven
        return proven

    async def _proven(self, begun: int, started: float, hold: Hold) -> bool:
        if self.sending and await self._taken_soon(begun):
            return True  # other traffic proved it: no canary needed
        if self._taken_upto >= begun:
            return True
        if self._breaker.state is not CircuitState.CLOSED:  # this was the half-open probe
            hold.probes += 1
            if hold.probes < 2 and not hold.own:
                # The first probe failure of a request never proven at fault: the outage may
                # go on (re-open). Its second, or a known suspect's, sends a canary, so a lone
                # bad event that happens to be every probe cannot hold the circuit open.
                return False
        if hold.unproven_since is None:
            hold.unproven_since = started
        if self._proving is None or self._proving.done():
            if self._canary is None or self._known_unhealthy():
                return False  # nothing to prove with, or nothing to learn
            if self._clock() - hold.unproven_since < self.canary_after:
                return False  # not yet worth a duplicate at the API: retry and see
            canary = _Canary(self._canary, self._canary_what)
            self._proving = asyncio.ensure_future(self._send_canary(canary))
        await asyncio.shield(self._proving)  # one in flight already: its answer serves
        return self._taken_upto >= begun

    def _known_unhealthy(self) -> bool:
        """The circuit is open (the API is down), or a brownout by rate (the budget is paused
        anyway): a canary would change nothing. The rate counts each request once, so a lone
        failing event cannot keep it unhealthy past ``RELAY_BROWNOUT_WINDOW``."""
        return self._breaker.state is CircuitState.OPEN or self._rate.unhealthy()

    async def _taken_soon(self, begun: int) -> bool:
        """While other requests are in flight, wait up to ``EVIDENCE_WAIT`` seconds for one
        to be taken (busy traffic proves it, no canary)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + EVIDENCE_WAIT
        while self._taken_upto < begun and self.sending:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._awaiting += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._taken.wait(), remaining)
            finally:
                self._awaiting -= 1
        return self._taken_upto >= begun

    async def _send_canary(self, canary: _Canary) -> None:
        """One request, no retry, outside the breaker: its answer is evidence, nothing more."""
        self.begun = begun = self.begun + 1
        try:
            await self._client.send_event(canary.payload, event_type=f"canary {canary.what}")
        except RequestRejected:
            if self._canary is canary.payload:
                self._canary = None  # it proves nothing any more: the next accepted one will
            return
        except Exception as exc:  # the API may be down: no evidence
            log.debug("canary failed: %s", exc)
            return
        log.info(
            "canary: the API took %s again; the failing request's failure is its own", canary.what
        )
        self.accepted(begun, None)
