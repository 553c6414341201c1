"""Quarantine of a deterministic processing bug: a record that met a processing bug in each of
RELAY_QUARANTINE_AFTER runs, and meets it again after the last restart, is dead-lettered as
``relay/processing-bug``.

A processing bug (anything but a Rejection raised while keying or processing a record) blocks
the record's partition and fails /livez, so the orchestrator restarts the process, which reads
the record again. A bug that is deterministic would do that forever. So each time a record meets
one, a *strike* is written, and once a record has ``after`` strikes from earlier runs, its next
bug dead-letters it (with the exception's type, never its message, which may quote the payload)
and the partition moves on.

Where the count lives: a compacted Kafka topic (RELAY_QUARANTINE_TOPIC, default
``<RELAY_DLQ_TOPIC>.strikes``, created on first use when missing; strikes kept a week). It must
survive the restart of a pod on Kubernetes (so not a local file) and be shared by whichever
replica owns the partition next (so not memory). The consumer group's offset-commit metadata
would be the other candidate, but faust commits offsets itself and would overwrite it. A
strike's key names the consumer group, the source partition and offset and a digest of the
record's bytes (so a recreated topic's new record at an old offset never inherits strikes); its
value is the number of bugs met so far.
Strikes are read only when a bug happens: nothing is read on the normal path.

If the store cannot be read or written (topic missing and not creatable, ACL denied), the record
is not quarantined: the partition stays blocked and /livez fails, as without quarantine. A
record is never dead-lettered because of a count that could not be checked.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from relay.errors import Rejection, RelayError
from relay.kafka.topics import read_topic
from relay.logs import KAFKA_CLIENT_LOG
from relay.pipeline.record import SourceRecord

log = logging.getLogger(__name__)

TIMEOUT = 15.0  # seconds for one read or write of the strike topic
# Strikes older than a week expire: a crash loop meets its record again within minutes, and the
# topic stays small (compaction keeps one strike per record meanwhile).
RETENTION_MS = 7 * 24 * 3600 * 1000


class StrikeStoreError(RelayError):
    """The strike topic could not be read, created or written."""


class Strikes:
    """Per-record counts of processing bugs, in a compacted topic."""

    def __init__(self, config: dict[str, Any], topic: str, group: str) -> None:
        # librdkafka's lines as JSON lines, repeats summed up (relay.logs)
        self.config = config | {"logger": KAFKA_CLIENT_LOG}
        self.topic, self.group = topic, group
        self._ensured = False

    def key(self, record: SourceRecord) -> bytes:
        digest = hashlib.sha256(record.value).hexdigest()[:16]
        where = f"{self.group}|{record.topic}|{record.partition}|{record.offset}|{digest}"
        return where.encode()

    async def count(self, record: SourceRecord) -> int:
        """How many processing bugs this record met in earlier runs (and this one so far)."""
        return await asyncio.to_thread(self._count, self.key(record))

    async def add(self, record: SourceRecord, count: int) -> None:
        """Record that the record has now met ``count`` bugs."""
        await asyncio.to_thread(self._write, self.key(record), str(count).encode())

    # -- blocking parts, run in a thread ---------------------------------------------------------

    def _count(self, key: bytes) -> int:
        self._ensure()
        try:
            messages = read_topic(self.config, self.topic, timeout=TIMEOUT)
        except (KafkaException, TimeoutError) as exc:
            raise StrikeStoreError(f"reading {self.topic}: {exc}") from None
        counts = [m.value() or b"0" for m in messages if m.key() == key]
        return int(counts[-1]) if counts else 0

    def _write(self, key: bytes, value: bytes) -> None:
        self._ensure()
        producer = Producer(self.config | {"acks": "all", "enable.idempotence": True})
        errors: list[KafkaError | None] = []
        try:
            producer.produce(self.topic, value, key, on_delivery=lambda err, _m: errors.append(err))
        except (BufferError, KafkaException) as exc:
            raise StrikeStoreError(f"writing {self.topic}: {exc}") from None
        if producer.flush(TIMEOUT) or (errors and errors[0] is not None):
            raise StrikeStoreError(f"writing {self.topic}: {errors[0] if errors else 'timeout'}")

    def _ensure(self) -> None:
        """Create the compacted topic when missing (once per process)."""
        if self._ensured:
            return
        admin = AdminClient(self.config)
        try:
            metadata = admin.list_topics(timeout=TIMEOUT)
        except KafkaException as exc:
            raise StrikeStoreError(f"listing topics: {exc}") from None
        if self.topic not in metadata.topics:
            config = {"cleanup.policy": "compact,delete", "retention.ms": str(RETENTION_MS)}
            topic = NewTopic(self.topic, num_partitions=1, replication_factor=-1, config=config)
            future = admin.create_topics([topic], operation_timeout=TIMEOUT)[self.topic]
            try:
                future.result(timeout=TIMEOUT)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise StrikeStoreError(f"creating {self.topic}: {exc}") from None
            log.info("created the strike topic %s (compacted)", self.topic)
        self._ensured = True


class Quarantine:
    """Decides, for a record whose processing raised, whether it is quarantined now."""

    def __init__(self, strikes: Strikes, after: int) -> None:
        self.strikes, self.after = strikes, after

    async def verdict(self, record: SourceRecord, bug: Exception) -> Rejection | None:
        """The ``relay/processing-bug`` rejection to dead-letter the record with, when earlier
        runs met a bug on it ``after`` times; else None (a strike is recorded: the caller
        re-raises, the partition blocks and the restart reads the record again)."""
        if self.after <= 0:
            return None
        name = type(bug).__name__  # never the message: it may quote the payload
        try:
            seen = await self.strikes.count(record)
            if seen >= self.after:
                detail = (
                    f"processing raised {name}; the record met a processing bug {seen + 1} times"
                )
                log.error("quarantining %s: %s", _where(record), detail)
                return Rejection("relay", "processing-bug", detail)
            await self.strikes.add(record, seen + 1)
            log.error("%s: processing bug %d of %d (%s)", _where(record), seen + 1,
                      self.after, name)  # fmt: skip
        except StrikeStoreError as exc:
            log.error("%s: processing bugs cannot be counted (%s): no quarantine", _where(record),
                      exc)  # fmt: skip
        return None


def _where(record: SourceRecord) -> str:
    return f"{record.topic}[{record.partition}]@{record.offset}"
