"""Envelope batching (RELAY_EVENTS_PER_REQUEST above 1): events of several records in one POST.

A ``Sink`` (relay/timeback/sink.py): a record hands ``EnvelopeBatcher.send`` all its events at
once and awaits them all. Pending events are packed, in the order they came, into Caliper
envelopes (docs/caliper-rules.md#envelopes: ``sensor``,
``sendTime``, ``dataVersion``, ``data``) of at most ``max_events``; a record's events stay
together in one envelope when they fit. An envelope's request starts when it is full, or
``linger`` seconds after its first event came (Kafka 4's producer lingers 5 ms by default),
with at most ``max_requests`` requests in flight; the envelope is closed only once its request
has its token of the rate limit and any pause is over (``relay.resilience.gate``), so that one
held by a rate limit takes the events that came meanwhile (up to ``max_events``).
Each request goes through the ``Deliverer``: retries, breaker, brownout budget and held
systemic answers all apply per request. A lone event is sent bare, exactly as with batching
off. The envelope is the events' serialized bytes joined: no event is serialized again.

An envelope whose answer does not say that each of its events was taken never reaches a record;
it is split in halves, sent again first half then second, recursively, until each event is
alone. That is: a refusal (``RequestRejected``); ``RetriesExhausted``, which for an envelope
comes at its first failure while the API takes other requests (a 5xx for one bad event, say:
the Deliverer gives envelopes no budget); a 409 (which of its events were the duplicates?); a
2xx that is not a whole acceptance (207, or a body listing failed events:
``responses.envelope_taken``); and an unexpected error (a bug) while sending it. Only an
event's own single-event answer reaches its record, so its dead letter carries the status and
body of that request, as with batching off, a good event is never dead-lettered for a
neighbour, and a bug raised by one event's request strikes that event's record alone. Events of
a split envelope the API did take are sent again: it keeps an event id once (2xx or 409).

A record of more than ``max_events`` events spans envelopes that may be in flight together, so
only its events within one envelope reach the API in its order (records map to 1-3 events).

Cancellation: a cancelled record (revocation, shutdown) withdraws its events not yet sent; an
envelope already in flight carries on for the other records' events, and the withdrawn ones are
left out when it is split. Nothing here knows Kafka.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol

import orjson

from relay.caliper.events import CONTEXT
from relay.caliper.ids import format_time
from relay.metrics import ENVELOPES_BY
from relay.resilience import Attempts, RetriesExhausted
from relay.timeback.client import SendResult
from relay.timeback.errors import RequestRejected
from relay.timeback.responses import Outcome, envelope_taken
from relay.timeback.sink import Sendable

log = logging.getLogger(__name__)

_DATA_VERSION: Final = orjson.dumps(CONTEXT)


class Pacer(Protocol):
    """The request gate (``relay.resilience.gate.RequestGate``), as the batcher sees it."""

    def paced(self) -> AbstractAsyncContextManager[None]: ...


class EnvelopeSender(Protocol):
    """What sends one request until it is answered: the ``Deliverer``."""

    async def deliver(
        self, payload: bytes, *, event_type: str, attempts: Attempts | None = None
    ) -> SendResult: ...

    async def deliver_envelope(
        self,
        payload: bytes,
        *,
        event_types: Sequence[str],
        attempts: Attempts | None = None,
        canary: bytes | None = None,
    ) -> SendResult: ...


def envelope(sensor: str, payloads: Sequence[bytes], sent: datetime) -> bytes:
    """The Caliper envelope of already-serialized events, built by joining their bytes."""
    head = b'{"sensor":%b,"sendTime":"%b","dataVersion":%b,"data":[' % (
        orjson.dumps(sensor),
        format_time(sent).encode(),
        _DATA_VERSION,
    )
    return head + b",".join(payloads) + b"]}"


class _Answers:
    """One record's events' answers, in its order; ``ready`` once each has one (a single future
    per record, not one per event gathered by ``asyncio.wait``)."""

    __slots__ = ("left", "ready", "results")

    def __init__(self, count: int, ready: asyncio.Future[None]) -> None:
        self.results: list[SendResult | BaseException | None] = [None] * count
        self.left = count
        self.ready = ready

    def give(self, index: int, answer: SendResult | BaseException) -> None:
        if self.ready.done() or self.results[index] is not None:
            return  # a withdrawn (cancelled) record's answers are nobody's
        self.results[index] = answer
        self.left -= 1
        if not self.left:
            self.ready.set_result(None)

    def outcome(self) -> list[SendResult]:
        """The results, or the first failure in the record's order."""
        for answer in self.results:
            if isinstance(answer, BaseException):
                raise answer
        return self.results  # type: ignore[return-value]  # each is a SendResult now


@dataclass(eq=False, slots=True)
class _Pending:
    """One event waiting for its answer (its ``index`` in its record's ``answers``);
    ``attempts`` is its record's (deliver stage)."""

    event: Sendable
    answers: _Answers
    index: int
    attempts: Attempts = field(default_factory=Attempts)

    @property
    def open(self) -> bool:
        """Not answered yet, and its record not withdrawn."""
        return not self.answers.ready.done() and self.answers.results[self.index] is None

    def settle(self, result: SendResult) -> None:
        self.answers.give(self.index, result)

    def fail(self, error: BaseException) -> None:
        self.answers.give(self.index, error)

    def cancel(self) -> None:
        self.answers.ready.cancel()


class EnvelopeBatcher:
    """Packs the events of concurrent records into envelopes of at most ``max_events``."""

    def __init__(
        self,
        sender: EnvelopeSender,
        *,
        sensor: str,
        max_events: int,
        linger: float,
        max_requests: int,
        gate: Pacer | None = None,
    ) -> None:
        if max_events < 2:
            raise ValueError("max_events must be >= 2 (1 means no batching: use the Deliverer)")
        if linger < 0 or max_requests < 1:
            raise ValueError("linger must be >= 0 and max_requests >= 1")
        self._sender = sender
        self.sensor = sensor
        self.max_events = max_events
        self.linger = linger
        self._requests = asyncio.Semaphore(max_requests)
        self._gate = gate
        self._turn = asyncio.Lock()  # one request at a time waits at the gate
        self._claims = 0  # requests started that have not taken their envelope yet
        self._open: list[_Pending] = []  # the envelope being filled
        # the sizes of the envelopes ``_open`` makes (``_packing``), kept as events come and go
        # rather than counted again over every waiting event at each add and take
        self._sizes: deque[int] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def waiting(self) -> int:
        """Events in the envelope being filled (not sent yet)."""
        return len(self._open)

    async def send(self, events: Sequence[Sendable], attempts: Attempts) -> list[SendResult]:
        """Every event of one record, until each is answered: their results, in order; or the
        first (in the record's order) event's own ``RequestRejected`` or ``RetriesExhausted``,
        raised only once every event of the record has its answer."""
        if self._closed:
            raise RuntimeError("the envelope batcher is closed")
        if not events:
            return []
        answers = _Answers(len(events), asyncio.get_running_loop().create_future())
        pending = [_Pending(event, answers, i, attempts) for i, event in enumerate(events)]
        self._add(pending)
        try:
            await answers.ready
        except asyncio.CancelledError:
            self._withdraw(pending)
            raise
        return answers.outcome()

    async def aclose(self) -> None:
        """Stop: nothing more is sent; events waiting or in flight are cancelled."""
        self._closed = True
        self._cancel_timer()
        for p in self._open:
            p.cancel()
        self._open.clear()
        self._sizes.clear()
        for task in list(self._sending):
            task.cancel()
        if self._sending:
            await asyncio.wait(list(self._sending))

    # -- packing --------------------------------------------------------------------------------

    def _add(self, pending: list[_Pending]) -> None:
        if self._open and self._open[-1].attempts is pending[0].attempts:
            self._open.extend(pending)  # the same record's run goes on: pack it whole again
            self._sizes = self._packing()
        else:
            self._open.extend(pending)
            self._pack(len(pending))
        self._schedule()

    def _schedule(self) -> None:
        """A request for each closed envelope not claimed yet; the linger timer for an open one."""
        sizes = self._sizes
        closed = len(sizes) - (1 if sizes and sizes[-1] < self.max_events else 0)
        while self._claims < closed:
            self._claim()
        if self._claims >= len(sizes):
            self._cancel_timer()  # every waiting event has a request that will take it
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.linger, self._lingered)

    def _lingered(self) -> None:
        self._timer = None
        if not self._closed and self._claims < len(self._sizes):
            self._claim()

    def _pack(self, record: int, sizes: deque[int] | None = None) -> None:
        """One record's ``record`` events added after the waiting ones: a record starts the next
        envelope rather than straddle two (unless it alone is more than ``max_events``). Only
        the last envelope can be open (under ``max_events``, with no record after it)."""
        if sizes is None:
            sizes = self._sizes
        size = sizes.pop() if sizes and sizes[-1] < self.max_events else 0
        if size and size + record > self.max_events:
            sizes.append(size)
            size = 0
        size += record
        while size >= self.max_events:
            sizes.append(self.max_events)
            size -= self.max_events
        if size:
            sizes.append(size)

    def _packing(self) -> deque[int]:
        """The sizes of the envelopes the waiting events make, in order, counted afresh."""
        sizes: deque[int] = deque()
        for record in _records(self._open):
            self._pack(record, sizes)
        return sizes

    def _claim(self) -> None:
        """Start a request; its events are chosen when it may leave (``_send_next``)."""
        self._claims += 1
        task = asyncio.create_task(self._send_next())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    def _take(self) -> list[_Pending]:
        """The first envelope of the waiting events (``_packing``)."""
        self._claims -= 1
        count = self._sizes.popleft() if self._sizes else 0
        batch, self._open = self._open[:count], self._open[count:]
        self._cancel_timer()
        if self._open:
            self._schedule()
        return batch

    def _withdraw(self, pending: list[_Pending]) -> None:
        """A cancelled record: its events not sent yet leave; those in flight are left out of
        any later split (their answers are dropped)."""
        answers = pending[0].answers  # one record's
        answers.ready.cancel()
        self._open = [p for p in self._open if p.answers is not answers]
        self._sizes = self._packing()
        if not self._open:
            self._cancel_timer()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # -- sending --------------------------------------------------------------------------------

    async def _send_next(self) -> None:
        """One request: its token of the gate's rate limit (and the end of any pause: the gate's
        ``paced``), and only then the envelope is closed with the events waiting at that
        moment, so that an envelope held by a rate limit fills up meanwhile instead of leaving
        with the few events of its linger. One request at a time waits at the gate (``_turn``):
        the others would only close their envelopes with it. The in-flight limits
        (``max_requests``, the gate's) are waited for afterwards, per request, as before."""
        taken = False
        try:
            async with AsyncExitStack() as pacing:
                async with self._turn:
                    if self._gate is not None:
                        await pacing.enter_async_context(self._gate.paced())
                    batch, taken = self._take(), True
                await self._send_batch(batch)
        finally:
            if not taken:
                self._claims -= 1  # cancelled before it took its events

    async def _send_batch(self, batch: list[_Pending]) -> None:
        """``_send``, making sure every event of the batch ends with an answer: a bug of the
        batcher itself (not of a request: those are split) is every one's, a cancellation
        (``aclose``) cancels them."""
        try:
            await self._send(batch)
        except asyncio.CancelledError:
            for p in batch:
                p.cancel()
            raise
        except Exception as bug:
            for p in batch:
                p.fail(bug)

    async def _send(self, batch: list[_Pending]) -> None:
        batch = [p for p in batch if p.open]  # withdrawn events are left out
        if len(batch) == 1:
            await self._send_alone(batch[0])
        elif batch:
            if await self._send_envelope(batch):
                return
            half = (len(batch) + 1) // 2  # in order: the first half is answered first
            await self._send(batch[:half])
            await self._send(batch[half:])

    async def _send_alone(self, p: _Pending) -> None:
        try:
            async with self._requests:
                result = await self._sender.deliver(
                    p.event.payload, event_type=p.event.type, attempts=p.attempts
                )
        except Exception as failed:  # refused, exhausted, or a bug: this event's record's alone
            p.fail(failed)
        else:
            p.settle(result)

    async def _send_envelope(self, batch: list[_Pending]) -> bool:
        """One envelope; True when every event of it was taken, False when it must be split."""
        attempts = Attempts()
        payload = envelope(self.sensor, [p.event.payload for p in batch], datetime.now(UTC))
        try:
            async with self._requests:
                result = await self._sender.deliver_envelope(
                    payload,
                    event_types=[p.event.type for p in batch],
                    attempts=attempts,
                    canary=batch[0].event.payload,
                )
        except (RequestRejected, RetriesExhausted) as refused:
            return _split(batch, f"{refused}")
        except Exception as bug:  # whose? only single events can say: split, never fail all
            return _split(batch, f"an unexpected {type(bug).__name__}")
        finally:
            _charge(batch, attempts)
        if result.outcome is not Outcome.DELIVERED:  # 409: only single events say which
            return _split(batch, f"HTTP {result.status}")
        if not envelope_taken(result.status, result.body):
            return _split(batch, f"HTTP {result.status} taking only part of it")
        ENVELOPES_BY("delivered").inc()
        for p in batch:
            p.settle(result)
        return True

    def __repr__(self) -> str:
        return (
            f"EnvelopeBatcher(max_events={self.max_events}, linger={self.linger:g}, "
            f"waiting={self.waiting}, sending={len(self._sending)})"
        )


def _split(batch: list[_Pending], why: str) -> bool:
    """Log and count an envelope to be split; False, for ``_send_envelope`` to return."""
    log.info("an envelope of %d events: %s; split to find which", len(batch), why)
    ENVELOPES_BY("split").inc()
    return False


def _records(pending: list[_Pending]) -> Iterator[int]:
    """The sizes of the runs of consecutive events of one record (``send`` adds them
    together, sharing the record's ``attempts``)."""
    run, last = 0, None
    for p in pending:
        if run and p.attempts is not last:
            yield run
            run = 0
        run, last = run + 1, p.attempts
    if run:
        yield run


def _charge(batch: list[_Pending], envelope: Attempts) -> None:
    """Add an envelope's attempts to each record it carried events of (once per record)."""
    records = {id(p.attempts): p.attempts for p in batch}
    for attempts in records.values():
        attempts.count += envelope.count
        if envelope.first_failure is not None:
            first = attempts.first_failure
            attempts.first_failure = min(first or envelope.first_failure, envelope.first_failure)
