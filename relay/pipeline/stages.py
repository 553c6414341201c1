"""The path of one record: decode → validate → enrich → map → check → deliver, or dead-letter.

Vector-style: a source record goes through stages; each either hands a value on or raises a
``Rejection``. A rejection is dead-lettered (and that write awaited) before the record counts as
done, so the dispatcher acknowledges it only then. Transient trouble (Schema Registry or
rostering down) is retried here with backoff and never becomes a rejection; the API's own
transient failures are retried by the ``Deliverer`` behind its circuit breaker. The API client
raises API-level errors; which stage and reason they are for the record is decided here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable
from typing import TypeVar

from relay.contract.activity import Activity, record_name
from relay.contract.decode import Decoder, RegistryLookupRequired
from relay.courses import CourseContext
from relay.errors import Rejection, Stage, SystemicError, TransientError
from relay.logs import start_record
from relay.mapping import CaliperEvent, Mapper
from relay.metrics import DELIVERY_LAG_TALLY, RECORDS_DECODED_BY, RETRIES
from relay.pipeline.deadletter import DeadLetterWriter
from relay.pipeline.quarantine import Quarantine
from relay.pipeline.record import Prepared, SourceRecord
from relay.resilience import Attempts, Backoff, Failure, RetriesExhausted, Retry, Verdict
from relay.timeback.errors import EventRejected, RequestRejected
from relay.timeback.responses import Outcome
from relay.timeback.sink import Sink

log = logging.getLogger(__name__)
T = TypeVar("T")
_decoded = RECORDS_DECODED_BY  # per record type, tallied (relay.metrics)


def predecode(decoder: Decoder, value: bytes) -> Activity | Rejection | None:
    """Decode without I/O when possible; None when the Schema Registry must be asked.
    Anything else it raises is a processing bug (the dispatcher's keying reports it)."""
    try:
        return decoder.decode_sync(value)
    except Rejection as rejection:
        return rejection
    except RegistryLookupRequired:
        return None


# The service behind each retried stage, as the RETRIES ``endpoint`` label names it.
_ENDPOINT = {"decode": "registry", "enrich": "rostering"}


def _cause(exc: Exception) -> str:
    """The catalogue's ``cause`` label: the API client's own (status, timeout, connect...)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, str):
        return cause
    return "systemic" if isinstance(exc, SystemicError) else "other"


def _outage(exc: BaseException) -> Verdict:
    """A registry or rostering outage, transient or systemic, is waited out (consumption
    stalls, lag grows) rather than dead-lettering good records; the rest is the record's."""
    if isinstance(exc, TransientError | SystemicError):
        return Verdict.RETRY
    return Verdict.RAISE


def stage_retry(
    stage: Stage, backoff: Backoff, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> Retry:
    """The retry of the decode (registry) or enrich (rostering) stage: forever, with backoff."""

    def counted(failure: Failure) -> None:
        RETRIES.labels(_ENDPOINT[stage], _cause(failure.error)).inc()
        log.warning("%s stage: %s; retrying in %.1f s", stage, failure.error, failure.delay)

    return Retry(backoff, classify=_outage, on_failure=counted, sleep=sleep)


def rejection_of(exc: RequestRejected | RetriesExhausted) -> Rejection:
    """What an API-level error means for the record, by its type: its stage and reason."""
    if isinstance(exc, RetriesExhausted):
        return Rejection("deliver", "retries-exhausted", str(exc))
    if isinstance(exc, EventRejected):
        return Rejection("deliver", "api-rejected", str(exc), status=exc.status, body=exc.body)
    return Rejection("enrich", "rostering-rejected", str(exc), status=exc.status, body=exc.body)


class RecordAttempts:
    """What one record went through, per stage, for its dead letter. Made only for a dead
    letter: the stages are handed their ``Attempts`` as the record goes."""

    def __init__(self, **stages: Attempts) -> None:
        self._stages: defaultdict[str, Attempts] = defaultdict(Attempts, stages)

    def stamp(self, rejection: Rejection) -> Rejection:
        """The rejection with its stage's attempts and the record's first failure (now, if the
        rejection itself is the first)."""
        failures = [a.first_failure for a in self._stages.values() if a.first_failure]
        rejection.attempts = max(1, self._stages[rejection.stage].count)
        rejection.first_failure = min(failures, default=None) or time.time()
        return rejection


class Pipeline:
    """The stages for one process; ``handle`` is the dispatcher's ``process``."""

    def __init__(
        self,
        decoder: Decoder,
        mapper: Mapper,
        sink: Sink,
        dead_letters: DeadLetterWriter,
        *,
        registry: Retry,
        rostering: Retry,
        quarantine: Quarantine | None = None,
    ) -> None:
        self.decoder, self.mapper, self.sink = decoder, mapper, sink
        self.dead_letters = dead_letters
        self.registry, self.rostering = registry, rostering
        self.quarantine = quarantine

    async def prepare(self, record: SourceRecord) -> tuple[Hashable, Prepared]:
        """The dispatcher's ``prepare``: decode the record (asking the Schema Registry for a
        schema id not cached yet, waited for while it is down) and key it by its student. The
        dispatcher prepares a partition's records in offset order, inside the window, so a cold
        cache never lets a student's later record overtake this one, and an unexpected error
        here blocks the partition instead of being acknowledged around. The only decode."""
        start_record(topic=record.topic, partition=record.partition, offset=record.offset)
        attempts = Attempts()
        try:
            decoded = predecode(self.decoder, record.value)
            if decoded is None:
                decoded = await self.registry.run(
                    lambda: self.decoder.decode(record.value), attempts
                )
        except Rejection as rejection:  # e.g. a schema id the registry does not know
            decoded = rejection
        except Exception as bug:
            decoded = await self._quarantined(record, bug)  # handle dead-letters it
        prepared = Prepared(record, decoded, attempts)
        return prepared.order_key, prepared

    def prepare_now(self, record: SourceRecord) -> tuple[Hashable, Prepared] | None:
        """The dispatcher's ``prepare_now``: ``prepare`` when decoding needs no I/O (the
        schema is cached); None when the registry must be asked, or decoding raised a bug
        (``prepare`` meets it again and deals with it)."""
        try:
            decoded = predecode(self.decoder, record.value)
        except Exception:
            return None
        if decoded is None:
            return None
        prepared = Prepared(record, decoded)
        return prepared.order_key, prepared

    async def handle(self, prepared: Prepared) -> None:
        """The dispatcher's ``process``: the stages after decoding, or the dead letter of the
        record's rejection. A processing bug is quarantined (dead-lettered) once the record has
        met it often enough; until then it is raised (the dispatcher blocks the partition).
        One coroutine for all of it: a frame per record, not one per layer."""
        record = prepared.record
        try:
            _start_record(record, prepared.decoded)
            enriching, delivering = Attempts(), Attempts()
            events: list[CaliperEvent] = []
            try:
                activity = self.decoded(prepared)  # and validated
                course = await self.enrich(activity, enriching)
                events = self.mapper.map_resolved(activity, course)  # checked: named in a DLQ
                await self.deliver(events, delivering)
                lag = time.time() - activity.occurred_at.timestamp()
                DELIVERY_LAG_TALLY.observe(max(0.0, lag))
            except Rejection as rejection:
                decoding = prepared.attempts if prepared.attempts is not None else Attempts()
                attempts = RecordAttempts(decode=decoding, enrich=enriching, deliver=delivering)
                await self.dead_letters.write(
                    record, attempts.stamp(rejection), event_ids=[e.id for e in events]
                )
        except Exception as bug:
            quarantined = await self._quarantined(record, bug)
            await self.dead_letters.write(record, quarantined)

    async def _quarantined(self, record: SourceRecord, bug: Exception) -> Rejection:
        """The processing bug's rejection if the record is quarantined now; else the bug is
        raised again (the dispatcher blocks the partition, the process gets restarted)."""
        rejection = None if self.quarantine is None else await self.quarantine.verdict(record, bug)
        if rejection is None:
            raise bug
        return rejection

    @staticmethod
    def decoded(prepared: Prepared) -> Activity:
        """The activity ``prepare`` decoded and validated (the contract checks a record as it
        reads it), or the rejection it met on the way."""
        decoded = prepared.decoded
        if isinstance(decoded, Rejection):
            raise decoded
        _decoded(decoded.__class__.__name__).inc()
        return decoded

    async def enrich(self, activity: Activity, attempts: Attempts) -> CourseContext:
        """Course and subject; rostering is waited for while it is down."""
        try:
            return await self.rostering.run(lambda: self.mapper.resolve(activity), attempts)
        except RequestRejected as refused:
            raise rejection_of(refused) from None

    async def deliver(self, events: list[CaliperEvent], attempts: Attempts) -> None:
        """Every event of the record to the sink, until each is taken; a refusal or an
        exhausted budget (its own event's) is the record's rejection. Anything else the sink
        raises is this record's processing bug (``handle`` quarantines it)."""
        try:
            results = await self.sink.send(events, attempts)
        except (RequestRejected, RetriesExhausted) as failed:
            raise rejection_of(failed) from None
        for event, sent in zip(events, results, strict=True):
            if sent.outcome is _DUPLICATE:  # a changed body is dropped: docs/dead-letters.md
                log.info(
                    "the API already had event %s (HTTP %d): not sent again", event.id, sent.status
                )


_DUPLICATE = Outcome.DUPLICATE


def _start_record(record: SourceRecord, decoded: Activity | Rejection) -> None:
    """The log context of a record's processing, set once: a worker processes record after
    record, and nothing of the previous one's context stays. A decoded record's lines also
    name its event id and type."""
    if isinstance(decoded, Rejection):
        start_record(topic=record.topic, partition=record.partition, offset=record.offset)
    else:
        start_record(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            event_id=decoded.event_id,
            record_type=record_name(decoded),
        )
