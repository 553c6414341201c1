"""The relay's moving parts for one process, built from Settings and started in the event loop.

Source → transforms → sink: the ``Decoder`` (contract), the ``Mapper`` with its
``CourseResolver`` (course and subject), the ``Sink`` (``relay.wiring.sink``: the ``Deliverer``
over one ``TimeBackClient`` behind a circuit breaker, one event per request or in envelopes),
the ``DeadLetterWriter``, and the ``Dispatcher`` that runs records concurrently and acknowledges
them in offset order. Nothing here knows faust: the worker hands it records and
an ``ack`` callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterable
from typing import Any

from relay import wiring
from relay.config import Settings
from relay.contract.decode import Decoder
from relay.errors import RelayError
from relay.health import Health
from relay.kafka.settings import confluent_config
from relay.metrics import COURSE_LOOKUPS_BY, RECORDS_ACKED_BY, RECORDS_CONSUMED_BY
from relay.pipeline.deadletter import DeadLetterWriter
from relay.pipeline.dispatch import Dispatcher
from relay.pipeline.quarantine import Quarantine, Strikes
from relay.pipeline.record import Prepared, SourceRecord
from relay.pipeline.stages import Pipeline, stage_retry
from relay.resilience import Backoff, CircuitBreaker, FailureRate, FixedDelay, Retry, Verdict
from relay.timeback.client import TimeBackClient
from relay.timeback.delivery import Deliverer
from relay.timeback.sink import Sink

log = logging.getLogger(__name__)

# Per-record counters, tallied per topic (relay.metrics: no lock per record).
_consumed = RECORDS_CONSUMED_BY
_acked = RECORDS_ACKED_BY

Ack = Callable[[Any], None]  # acknowledges the transport's own handle of a record


class Runtime:
    def __init__(self, settings: Settings, ack: Ack) -> None:
        self.settings = settings
        # what /livez and /readyz say: every part reports here
        self.health = Health(stall_after=settings.stall_after)
        self.decoder = Decoder.from_settings(settings)
        self._ack_handle = ack
        self._started: asyncio.Future[None] | None = None
        self.client: TimeBackClient | None = None
        self.dispatcher: Dispatcher[SourceRecord, Prepared] | None = None
        self.dead_letters: DeadLetterWriter | None = None
        self._token_task: asyncio.Task[None] | None = None
        self.sink: Sink | None = None

    async def start(self) -> None:
        """Build what needs the running loop (HTTP pool, producer, dispatcher); idempotent."""
        if self._started is None:
            self._started = asyncio.get_running_loop().create_future()
            try:
                self._build()
                self._started.set_result(None)
            except BaseException as exc:
                self._started.set_exception(exc)
                raise
            self._token_task = asyncio.create_task(self._first_token())
        await self._started

    def _build(self) -> None:
        s, health = self.settings, self.health
        backoff = Backoff(s.retry_base, s.retry_cap)
        self.client = TimeBackClient(
            wiring.client_config(s), health=health, gate=wiring.request_gate(s)
        )
        breaker = CircuitBreaker(
            s.circuit_failures,
            s.circuit_open_for,
            max_open_for=s.circuit_max_open_for,
            on_change=health.circuit_observer("events"),
        )
        rate = FailureRate(s.brownout_rate, s.brownout_window)
        deliverer = Deliverer(
            self.client,
            breaker,
            backoff,
            s.retry_budget,
            s.retry_after_cap,
            rate=rate,
            health=health,
        )
        self.sink = wiring.sink(s, deliverer, self.client.gate)
        resolver = wiring.course_resolver(s, self.client, observe=_observe_lookup)
        self.dead_letters = DeadLetterWriter(
            confluent_config(s), s.dlq_topic, backoff=backoff, health=health
        )
        pipeline = Pipeline(
            self.decoder,
            wiring.mapper(s, resolver),
            self.sink,
            self.dead_letters,
            registry=stage_retry("decode", backoff),
            rostering=stage_retry("enrich", backoff),
            quarantine=Quarantine(
                Strikes(confluent_config(s), s.strike_topic, s.group_id), s.quarantine_after
            ),
        )
        self.dispatcher = Dispatcher(
            pipeline.handle,
            self._ack,
            # records at once: RELAY_MAX_IN_FLIGHT requests of up to RELAY_EVENTS_PER_REQUEST
            max_in_flight=s.records_in_flight,
            max_pending=s.pending_limit,
            on_error=functools.partial(processing_bug, health),
            prepare=pipeline.prepare,  # decoding, in the window, in offset order
            prepare_now=pipeline.prepare_now,  # the same, when the schema is cached
            max_pending_bytes=s.max_pending_bytes,
            size=SourceRecord.size,
        )

    async def _first_token(self) -> None:
        """Ready needs a valid token: ask for one now rather than on the first record (polled
        at a steady pace; the token manager reports each failure to Health)."""
        assert self.client is not None
        poll = Retry(
            FixedDelay(min(self.settings.retry_cap, 5.0)),
            classify=lambda exc: Verdict.RETRY if isinstance(exc, RelayError) else Verdict.RAISE,
            retry_after_cap=0.0,
            on_failure=lambda failure: log.warning("no token yet: %s", failure.error),
        )
        await poll.run(self.client.auth.token)

    # -- records in, acknowledgements out -------------------------------------------------------

    def submit(self, record: SourceRecord) -> Awaitable[bool]:
        """Admit one record (await it: it waits for room in the window); its ``handle`` is
        acknowledged once it is done and every earlier record of its partition is done. The
        awaitable is the dispatcher's own (no coroutine of ours per record); False: its
        partition was revoked while it waited, and the next owner reads it again."""
        if self.dispatcher is None:
            return self._submit_first(record)
        _consumed(record.topic).inc()
        # Nothing of the record is looked at here: decoding (to key it by its student) happens
        # in the window, so whatever it raises can never be acknowledged around.
        return self.dispatcher.submit(record, partition=(record.topic, record.partition))

    async def _submit_first(self, record: SourceRecord) -> bool:
        await self.start()
        return await self.submit(record)

    def _ack(self, record: SourceRecord) -> None:
        self._ack_handle(record.handle)
        _acked(record.topic).inc()
        self.health.progressed()

    async def revoke(self, partitions: Iterable[Hashable]) -> None:
        if self.dispatcher is None:
            return
        dropped = await self.dispatcher.revoke(list(partitions))
        if dropped:
            log.info("revoked: %d records in flight cancelled, to be redelivered", dropped)

    async def drain(self, grace: float) -> bool:
        """Stop admitting and let in-flight records finish within ``grace`` seconds."""
        if self.dispatcher is None:
            return True
        finished = await self.dispatcher.drain(grace)
        log.info("drained: %s", "all acknowledged" if finished else "some left for redelivery")
        return finished

    async def close(self) -> None:
        if self._token_task is not None:
            self._token_task.cancel()
        if self.sink is not None:
            await self.sink.aclose()
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()
        if self.dead_letters is not None:
            self.dead_letters.close()


def processing_bug(health: Health, record: SourceRecord, exc: BaseException) -> None:
    """A record's processing raised instead of dead-lettering: a bug. Its partition is blocked
    (acknowledging past it would lose it), so /livez turns 503 and the orchestrator restarts the
    process, which reads the record again. Only the exception's type is kept: no payload."""
    why = (
        f"processing {record.topic}[{record.partition}]@{record.offset} raised "
        f"{type(exc).__name__}; the partition is blocked"
    )
    health.broke(why, source=f"{record.topic}[{record.partition}]")
    log.critical("%s: restart the relay (liveness now fails)", why)


_lookups = COURSE_LOOKUPS_BY


def _observe_lookup(source: str, result: str) -> None:
    _lookups(source, result).inc()
