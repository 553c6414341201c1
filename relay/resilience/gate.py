"""The gate every API request passes: the shared pause, the in-flight limit, the rate.

One ``RequestGate`` per process, used at one place (the client's send path)::

    async with gate.slot() as slot:
        response = await send(...)
        slot.answered(response.status_code, retry_after)

A slot waits out the shared ``Pause``, then a place under the ``ConcurrencyLimit``, then a token
of the ``TokenBucket`` (if a rate is set). Its outcome is observed when it ends: an answer with
its round-trip time; a 429 (or a 5xx with ``Retry-After``) pauses every request (and an
adaptive limit restarts at 1, so they do not all leave at the same instant after it); an
exception that escapes the slot is a failed attempt (no answer); a cancelled one tells nothing.
An outage (a run of failures) restarts the bucket low, as the concurrency limit restarts at 1.
The gate counts requests, whatever they carry (one event or an envelope).

A request whose content is chosen late (an envelope, closed when the rate lets it leave
rather than before it waits: relay/timeback/envelopes.py) is ``paced`` first::

    async with gate.paced():      # waits out the pause, takes its token, nothing packed yet
        payload = pack()           # then fills its envelope
        await send(payload)        # whose first slot() in this task takes no second token

The token travels in a context variable, so the layers between (retries, breaker) need not
carry it; a retry's slot takes a token of its own. Only the rate and the pause are taken
ahead, never a place under the in-flight limit: a place held by a request not yet built could
starve the requests in flight of the places their retries need.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from types import TracebackType

from relay.metrics import (
    API_PAUSES,
    LIMITER_WAIT_SECONDS,
    LIMITER_WAITS,
    REQUEST_CONCURRENCY_LIMIT,
    REQUEST_PAUSE_SECONDS,
    REQUEST_RATE_LIMIT,
    REQUEST_TOKENS,
    REQUESTS_IN_FLIGHT,
)
from relay.resilience.concurrency import BACKOFF_DECREASE, ConcurrencyLimit, Mode, Signal
from relay.resilience.limiter import Pause, TokenBucket

log = logging.getLogger(__name__)

DEFAULT_PAUSE = 1.0  # seconds every request waits after a 429 without Retry-After
BACK_PRESSURE = frozenset({429, 503})


@dataclass(frozen=True)
class GateConfig:
    """``max_in_flight`` (the fixed limit, or the adaptive one's ceiling), the mode, and an
    optional rate (requests per second) with its burst (default: one second's worth)."""

    max_in_flight: int = 64
    mode: Mode = Mode.FIXED
    rate: float | None = None
    burst: int | None = None
    ramp: float = 5.0

    @property
    def effective_burst(self) -> int:
        return self.burst or max(1, round(self.rate or 1))


class _Prepaid:
    """A token already taken (``paced``) for the next ``slot()`` of this task."""

    __slots__ = ("used",)

    def __init__(self) -> None:
        self.used = False


_PREPAID: ContextVar[_Prepaid | None] = ContextVar("relay_gate_prepaid", default=None)


class Slot:
    """One request's passage, an async context manager (``RequestGate.slot``): tell it the
    answer (``answered``) before leaving.

    The hot path (the client's events POST) passes it without the context manager's two
    coroutines: ``enter_now()`` (else ``await enter()``), then ``leave(error)`` in a
    ``finally``, which is what ``async with`` does here."""

    __slots__ = ("_gate", "_prepaid", "retry_after", "started", "status")

    def __init__(self, gate: RequestGate) -> None:
        self._gate = gate
        self._prepaid = False
        self.started = 0.0
        self.status: int | None = None
        self.retry_after: float | None = None

    def answered(self, status: int, retry_after: float | None = None) -> None:
        self.status = status
        self.retry_after = retry_after

    def enter_now(self) -> bool:
        """Pass at once if the gate is open (no pause, no token to take, a place free): True,
        the place taken. False: ``enter`` waits."""
        gate = self._gate
        prepayment = _PREPAID.get()
        if prepayment is not None:
            self._prepaid = not prepayment.used
            prepayment.used = True  # its token was taken ahead (``paced``)
        now = gate._clock()
        if gate._open_now(now, self._prepaid):
            self.started = now
            return True
        return False

    async def enter(self) -> None:
        """Wait out the pause, a place and a token (after ``enter_now`` said no)."""
        gate = self._gate
        await gate._admit(self._prepaid)
        self.started = gate._clock()

    def leave(self, error: BaseException | None) -> None:
        """The request is over: ``error`` None when it ended with an answer (``answered``), else
        what escaped it (cancelled: no verdict; else a failed attempt, or the caller's verdict
        on an answer it raised after)."""
        gate = self._gate
        try:
            if error is None:
                gate._observe(_signal(self.status), self)
            elif not isinstance(error, asyncio.CancelledError):  # cancelled: no verdict
                # raised after an answer (the caller's verdict on it), or no answer at all
                gate._observe(Signal.FAILED if self.status is None else _signal(self.status), self)
        finally:
            gate.concurrency.release()

    async def __aenter__(self) -> Slot:
        if not self.enter_now():
            await self.enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.leave(exc)


class RequestGate:
    """Pause, concurrency limit and token bucket in front of every request (module doc)."""

    def __init__(
        self,
        config: GateConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config = config or GateConfig()
        self._clock = clock
        self.pause = Pause(clock=clock, sleep=sleep)
        self._down: Signal | None = None  # an outage's kind, until the first answer after it
        self.concurrency = ConcurrencyLimit(config.max_in_flight, config.mode, clock=clock)
        self.bucket = (
            TokenBucket(
                config.rate, config.effective_burst, ramp=config.ramp, clock=clock, sleep=sleep
            )
            if config.rate
            else None
        )
        REQUEST_CONCURRENCY_LIMIT.set_function(lambda: self.concurrency.limit)
        REQUESTS_IN_FLIGHT.set_function(lambda: self.concurrency.in_flight)
        REQUEST_PAUSE_SECONDS.set_function(lambda: self.pause.remaining)
        bucket = self.bucket
        if bucket is not None:
            REQUEST_TOKENS.set_function(lambda: max(bucket.tokens, 0.0))
            REQUEST_RATE_LIMIT.set_function(bucket.current_rate)
        else:
            REQUEST_TOKENS.set_function(lambda: 0.0)
            REQUEST_RATE_LIMIT.set_function(lambda: 0.0)

    @asynccontextmanager
    async def paced(self) -> AsyncIterator[None]:
        """Wait out the pause and take a token now; the first ``slot()`` of this task inside
        takes none (module doc)."""
        paused = await self.pause.wait()
        if paused and self.bucket is not None:
            self.bucket.drain()
        rated = await self.bucket.acquire() if self.bucket is not None else 0.0
        if paused or rated:
            _count_wait(paused, 0.0, rated)
        reset = _PREPAID.set(_Prepaid())
        try:
            yield
        finally:
            _PREPAID.reset(reset)

    def slot(self) -> Slot:
        """One request's passage: ``async with gate.slot() as slot`` (module doc)."""
        return Slot(self)

    def _open_now(self, now: float, prepaid: bool) -> bool:
        """The common case, decided without waiting: no pause, no token to take, a place free
        (taken)."""
        metered = self.bucket is not None and not prepaid
        return self.pause.until <= now and not metered and self.concurrency.try_acquire()

    async def _admit(self, prepaid: bool = False) -> None:
        paused = await self.pause.wait()
        started = self._clock()
        await self.concurrency.acquire()
        queued = self._clock() - started
        try:
            if paused and self.bucket is not None:
                self.bucket.drain()  # tokens saved up during a pause are no licence to burst
            rated = 0.0
            if self.bucket is not None and not prepaid:
                rated = await self.bucket.acquire()
            paused += await self.pause.wait()  # a 429 may have come in while this one queued
        except BaseException:
            self.concurrency.release()
            raise
        if paused or queued > 0.001 or rated:
            _count_wait(paused, queued, rated)

    def _observe(self, signal: Signal, slot: Slot) -> None:
        status = slot.status
        if status is not None and _pauses(status, slot.retry_after):
            self._pause_all(status, slot.retry_after)
        if self.concurrency.observe(signal, self._clock() - slot.started):
            log.info("the API looks down: requests restart at 1 in flight and climb")
            self._down = signal
        elif self._down is not None and signal is Signal.OK:
            self._recovered(self._down)

    def _recovered(self, outage: Signal) -> None:
        """The first answer after an outage. The bucket refilled while the circuit was open:
        after no answer at all (down), climb again from a tenth of the rate; after 429/503s
        (the API was up, and said how much), only drop what was saved up."""
        self._down = None
        if self.bucket is not None:
            self.bucket.restart() if outage is Signal.FAILED else self.bucket.drain()

    def _pause_all(self, status: int, retry_after: float | None) -> None:
        seconds = DEFAULT_PAUSE if retry_after is None else retry_after
        if seconds > 0 and self.pause.extend(seconds):
            API_PAUSES.labels(status=str(status)).inc()
            # everyone waits for the same instant: let them out 1, 2, 4... a round trip
            self.concurrency.restart(learnt=BACKOFF_DECREASE)
            if self.bucket is not None:
                self.bucket.drain()

    def __repr__(self) -> str:
        return f"RequestGate({self.concurrency!r}, {self.bucket!r}, {self.pause!r})"


def _pauses(status: int, retry_after: float | None) -> bool:
    """A 429 always pauses everyone; a 5xx (503 included) only when it says for how long. A
    503 without Retry-After is the API failing, not asking for less: pausing everyone for each
    one turned a brownout (40 % 503s) into a standstill in the reliability suite, and the
    waits were charged to the records' retry budgets. The breaker and the failure rate are
    what handle failures."""
    return status == 429 or (status >= 500 and retry_after is not None)


def _signal(status: int | None) -> Signal:
    if status is None or (200 <= status < 500 and status != 429):
        return Signal.OK  # None: the caller never said (a refusal it raised on), so it answered
    if status in BACK_PRESSURE:
        return Signal.BACK_PRESSURE
    return Signal.FAILED


def _count_wait(paused: float, queued: float, rated: float) -> None:
    reason = max(("pause", paused), ("concurrency", queued), ("rate", rated), key=lambda x: x[1])
    LIMITER_WAITS.labels(reason=reason[0]).inc()
    LIMITER_WAIT_SECONDS.observe(paused + queued + rated)
