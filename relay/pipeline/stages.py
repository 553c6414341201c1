"""The path of one record: decode → validate → enrich → map → validate → deliver, or dead-letter.

Vector-style: a source record goes through stages; each either hands a value on or raises a
``Rejection``. A rejection is dead-lettered (and that write awaited) before the record counts as
done, so the dispatcher acknowledges it only then. Transient trouble (Schema Registry or
rostering down) is retried here with backoff and never becomes a rejection; the API's own
transient failures are retried by the ``Deliverer`` behind its circuit breaker.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from relay.contract.activity import Activity, record_name
from relay.contract.decode import Decoder, RegistryLookupRequired
from relay.errors import Rejection, SystemicError, TransientError
from relay.logs import bind_record
from relay.mapping import CaliperEvent, Mapper
from relay.metrics import DELIVERY_LAG, RECORDS_DECODED, RETRIES
from relay.pipeline.deadletter import DeadLetterWriter
from relay.pipeline.record import SourceRecord
from relay.timeback.client import SendResult
from relay.timeback.delivery import Deliverer, EventSender
from relay.timeback.policy import Backoff

log = logging.getLogger(__name__)
T = TypeVar("T")


def predecode(decoder: Decoder, value: bytes) -> Activity | Rejection | None:
    """Decode without I/O when possible; None when the Schema Registry must be asked."""
    try:
        return decoder.decode_sync(value)
    except Rejection as rejection:
        return rejection
    except RegistryLookupRequired:
        return None


@dataclass
class Trace:
    """What one record went through, for its dead letter: attempts per stage, first failure."""

    attempts: Counter[str] = field(default_factory=Counter)
    first_failure: float | None = None

    def failed(self) -> None:
        if self.first_failure is None:
            self.first_failure = time.time()


# Each record runs in its own task (the dispatcher's), so a context variable is per record.
_TRACE: contextvars.ContextVar[Trace | None] = contextvars.ContextVar("relay_trace", default=None)


class CountingSender:
    """The API client as the Deliverer sees it, counting each record's send attempts and noting
    its first failure (the Deliverer retries inside, out of the pipeline's sight)."""

    def __init__(self, client: EventSender) -> None:
        self._client = client

    async def send_event(self, payload: bytes, *, event_type: str) -> SendResult:
        trace = _TRACE.get()
        if trace is not None:
            trace.attempts["deliver"] += 1
        try:
            return await self._client.send_event(payload, event_type=event_type)
        except Exception:
            if trace is not None:
                trace.failed()
            raise


# The service behind each retried stage, as the RETRIES ``endpoint`` label names it.
_ENDPOINT = {"decode": "registry", "enrich": "rostering"}


def _cause(exc: Exception) -> str:
    """The catalogue's ``cause`` label: the API client's own (status, timeout, connect...)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, str):
        return cause
    return "systemic" if isinstance(exc, SystemicError) else "other"


class Pipeline:
    """The stages for one process; ``handle`` is the dispatcher's ``process``."""

    def __init__(
        self,
        decoder: Decoder,
        mapper: Mapper,
        deliverer: Deliverer,
        dead_letters: DeadLetterWriter,
        *,
        backoff: Backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.decoder, self.mapper, self.deliverer = decoder, mapper, deliverer
        self.dead_letters = dead_letters
        self.backoff = backoff
        self._sleep = sleep

    async def handle(self, record: SourceRecord) -> None:
        bind_record(topic=record.topic, partition=record.partition, offset=record.offset)
        events: list[CaliperEvent] = []
        trace = Trace()
        _TRACE.set(trace)
        try:
            activity = await self._decode(record)
            bind_record(event_id=activity.event_id, record_type=record_name(activity))
            events = await self._retrying("enrich", lambda: self.mapper.map(activity))
            for event in events:
                await self.deliverer.deliver(event.payload, event_type=event.type)
            DELIVERY_LAG.observe(max(0.0, time.time() - activity.occurred_at.timestamp()))
        except Rejection as rejection:
            trace.failed()
            await self.dead_letters.write(
                record,
                rejection,
                event_ids=[e.id for e in events],
                attempts=max(1, trace.attempts[rejection.stage]),
                first_failure=trace.first_failure or time.time(),
            )

    async def _decode(self, record: SourceRecord) -> Activity:
        decoded = record.predecoded
        if decoded is None:
            decoded = await self._retrying("decode", lambda: self.decoder.decode(record.value))
        if isinstance(decoded, Rejection):
            raise decoded
        RECORDS_DECODED.labels(decoded.__class__.__name__).inc()
        return decoded

    async def _retrying(self, stage: str, step: Callable[[], Awaitable[T]]) -> T:
        """Run ``step`` until it answers or rejects: a registry or rostering outage is waited
        out (consumption stalls, lag grows) rather than dead-lettering good records."""
        attempt = 0
        trace = _TRACE.get()
        while True:
            if trace is not None:
                trace.attempts[stage] += 1
            try:
                return await step()
            except (TransientError, SystemicError) as exc:
                if trace is not None:
                    trace.failed()
                delay = self.backoff.delay(attempt)
                if isinstance(exc, TransientError) and exc.retry_after:
                    delay = max(delay, exc.retry_after)
                RETRIES.labels(_ENDPOINT[stage], _cause(exc)).inc()
                log.warning("%s stage: %s; retrying in %.1f s", stage, exc, delay)
                attempt += 1
                await self._sleep(delay)
