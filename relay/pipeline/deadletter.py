"""Dead letters: the records the relay cannot deliver, kept whole with the reason why.

A dead-letter record keeps the original key, value bytes and headers, and adds ``relay.*``
headers (any previous ``relay.*`` headers are replaced, not appended; ``relay.replays`` survives):

| header | value |
|---|---|
| relay.stage, relay.reason, relay.detail | the Rejection (detail capped, secrets masked) |
| relay.http.status, relay.http.body | the API's answer, when it refused the event (body capped) |
| relay.attempts | delivery attempts spent |
| relay.source.topic / .partition / .offset / .timestamp | where the record came from |
| relay.failure.first, relay.failure.last | UTC times of the first and last failure |
| relay.event_ids | the Caliper event ids made from the record (comma-separated) |
| relay.version | the relay's version |

Times are ISO-8601 UTC; a source timestamp no date can hold (a producer's CreateTime past year
9999, or negative) is written as its number of seconds. Text that UTF-8 cannot encode (lone
surrogates) is written with backslash escapes; the original headers are kept as they came, a
header without a value included.

The write is acknowledged by all in-sync replicas (acks=all, idempotent producer) and awaited
before the source offset may be acknowledged. A write that fails is counted, reported to Health
(the relay is not ready, saying why), and retried with backoff: the record's partition waits; it
is never skipped.

A failure no retry can fix (the record is larger than the topic's max.message.bytes, the
relay's principal may not write the topic, the topic does not exist) is still retried, since the
partition must not move past an unwritten dead letter, but it is escalated: logged at CRITICAL,
counted in ``dlq_permanent_failures{error}`` (error: a Kafka error name from ``PERMANENT``) and
named in /readyz with what to fix. The retries then succeed once an operator fixed the topic.

Reading the topic back (``relay dlq``, reconciliation) is ``relay.ops.dead_letters``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, cast

from confluent_kafka import KafkaError, KafkaException, Producer

from relay import __version__
from relay.errors import Rejection, TransientError
from relay.health import Condition, Health
from relay.logs import KAFKA_CLIENT_LOG, redact
from relay.metrics import (
    DLQ_PERMANENT_FAILURES,
    DLQ_WRITE_FAILURES,
    DLQ_WRITES,
    RECORDS_REJECTED,
)
from relay.pipeline.record import SourceRecord
from relay.resilience import Backoff, Failure, Retry

log = logging.getLogger(__name__)

PREFIX: Final = "relay."
REPLAYS: Final = "relay.replays"  # kept across dead-lettering: how often a record was replayed
DETAIL_CAP: Final = 1000
BODY_CAP: Final = 2000


def dead_letter_headers(
    record: SourceRecord,
    rejection: Rejection,
    *,
    event_ids: Sequence[str] = (),
    attempts: int = 1,
    first_failure: float,
    last_failure: float,
) -> list[tuple[str, bytes | None]]:
    """The original headers (minus old ``relay.*`` but ``relay.replays``) plus ours. Total: any
    bytes, any text and any metadata make headers (a dead letter that cannot be built would
    block its partition for good)."""
    kept = [(k, v) for k, v in record.headers if not k.startswith(PREFIX) or k == REPLAYS]
    ours: dict[str, str | None] = {
        "relay.stage": rejection.stage,
        "relay.reason": rejection.reason,
        "relay.detail": redact(rejection.detail)[:DETAIL_CAP],
        "relay.http.status": str(rejection.status) if rejection.status else None,
        "relay.http.body": redact(rejection.body)[:BODY_CAP] if rejection.body else None,
        "relay.attempts": str(attempts),
        "relay.source.topic": record.topic,
        "relay.source.partition": str(record.partition),
        "relay.source.offset": str(record.offset),
        "relay.source.timestamp": _time(record.timestamp) if record.timestamp else None,
        "relay.failure.first": _time(first_failure),
        "relay.failure.last": _time(last_failure),
        "relay.event_ids": ",".join(event_ids) or None,
        "relay.version": __version__,
    }
    return kept + [(k, _utf8(v)) for k, v in ours.items() if v is not None]


def _utf8(text: str) -> bytes:
    """Text from anywhere (a library's message, a decoded body) may hold lone surrogates, which
    UTF-8 cannot encode: they are written as backslash escapes."""
    return text.encode(errors="backslashreplace")


def _time(seconds: float) -> str:
    """ISO-8601 UTC with milliseconds; a time no date can hold (a producer's CreateTime past
    year 9999, negative, not finite) as the number of seconds it is."""
    if seconds >= 0:  # False for NaN too
        with contextlib.suppress(OverflowError, ValueError, OSError):
            return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds")
    return repr(seconds)


# Kafka errors no retry fixes without an operator, and what to fix. The keys bound the
# ``error`` label of dlq_permanent_failures.
PERMANENT: Final[dict[int, str]] = {
    KafkaError.MSG_SIZE_TOO_LARGE: "the record is larger than the topic's max.message.bytes:"
    " raise it on the topic",
    KafkaError.RECORD_LIST_TOO_LARGE: "the record is larger than the topic's max.message.bytes:"
    " raise it on the topic",
    KafkaError.TOPIC_AUTHORIZATION_FAILED: "the relay's principal may not write the topic:"
    " grant it WRITE and DESCRIBE on the topic",
    KafkaError.CLUSTER_AUTHORIZATION_FAILED: "the relay's principal may not use the idempotent"
    " producer: grant it IDEMPOTENT_WRITE on the cluster",
    KafkaError.UNKNOWN_TOPIC_OR_PART: "the topic does not exist: create it",
    KafkaError._UNKNOWN_TOPIC: "the topic does not exist: create it",
    KafkaError.POLICY_VIOLATION: "the broker's policy refuses the record",
}


class DeadLetterWriteFailed(TransientError):
    """The broker did not take a dead letter; ``error`` is librdkafka's, when it gave one."""

    def __init__(self, why: str, error: KafkaError | None = None) -> None:
        super().__init__(why)
        self.error = error

    @property
    def permanent(self) -> str | None:
        """The error's name when no retry can succeed until an operator acts, else None."""
        if self.error is None or self.error.code() not in PERMANENT:
            return None
        return str(self.error.name())

    @property
    def remedy(self) -> str:
        return PERMANENT.get(self.error.code(), "") if self.error is not None else ""


class DeadLetterWriter:
    """Writes dead letters with a confluent-kafka producer polled by a thread of its own."""

    def __init__(
        self,
        config: dict[str, Any],
        topic: str,
        *,
        backoff: Backoff,
        health: Health | None = None,
    ) -> None:
        self.topic = topic
        self.backoff = backoff
        self.health = health if health is not None else Health()
        self._retry = Retry(backoff, on_failure=self._failed)
        self._producer: Producer | None = Producer(
            config
            | {
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.max.bytes": 4 * 1024 * 1024,
                "delivery.timeout.ms": 30000,
                "logger": KAFKA_CLIENT_LOG,  # JSON lines, repeats summed up (relay.logs)
            }
        )
        self._running = True
        self._poller = threading.Thread(target=self._poll, name="dlq-poller", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        producer = self._producer
        while self._running and producer is not None:
            producer.poll(0.1)

    async def write(
        self, record: SourceRecord, rejection: Rejection, *, event_ids: Sequence[str] = ()
    ) -> None:
        """Write and await one dead letter; retries until the broker acknowledges it.
        ``relay.attempts`` and ``relay.failure.first`` are the rejection's own."""
        RECORDS_REJECTED.labels(rejection.stage, rejection.reason).inc()
        log.warning(
            "dead-lettering: %s/%s: %s",
            rejection.stage,
            rejection.reason,
            redact(rejection.detail)[:300],
        )

        async def attempt() -> None:
            headers = dead_letter_headers(
                record,
                rejection,
                event_ids=event_ids,
                attempts=rejection.attempts,
                first_failure=rejection.first_failure or time.time(),
                last_failure=datetime.now(UTC).timestamp(),
            )
            error = await self._send(record.key, record.value, headers)
            if error is not None:
                raise DeadLetterWriteFailed(str(error), error)

        await self._retry.run(attempt)
        DLQ_WRITES.labels(rejection.reason).inc()
        self.health.report(Condition.DLQ_HEALTHY, True, source=self.topic)

    def _failed(self, failure: Failure) -> None:
        DLQ_WRITE_FAILURES.inc()
        error = failure.error
        permanent = error.permanent if isinstance(error, DeadLetterWriteFailed) else None
        if permanent is None or not isinstance(error, DeadLetterWriteFailed):
            why = f"dead-letter writes to {self.topic} fail: {error}"
            self.health.report(Condition.DLQ_HEALTHY, False, why, source=self.topic)
            log.error("%s; retrying in %.1f s; the partition waits", why, failure.delay)
            return
        DLQ_PERMANENT_FAILURES.labels(permanent).inc()
        why = (
            f"dead-letter writes to {self.topic} fail permanently ({permanent}): "
            f"{error.remedy}; no retry succeeds until then and the partition waits"
        )
        self.health.report(Condition.DLQ_HEALTHY, False, why, source=self.topic)
        log.critical("%s (%s); retrying in %.1f s", why, redact(str(error))[:300], failure.delay)

    async def _send(
        self, key: bytes | None, value: bytes, headers: list[tuple[str, bytes | None]]
    ) -> KafkaError | None:
        producer = self._producer
        if producer is None:  # closed at shutdown: the record stays unacknowledged
            return KafkaError(KafkaError._DESTROY, "the dead-letter producer is closed")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[KafkaError | None] = loop.create_future()

        def delivered(err: KafkaError | None, _msg: Any) -> None:
            loop.call_soon_threadsafe(_settle, done, err)

        try:
            # list is invariant: our headers are a valid list[tuple[str, str | bytes | None]]
            wire_headers = cast(list[tuple[str, str | bytes | None]], headers)
            producer.produce(self.topic, value, key, headers=wire_headers, on_delivery=delivered)
        except KafkaException as exc:  # unknown topic, message too large (local checks)
            error = exc.args[0] if exc.args else None
            return (
                error if isinstance(error, KafkaError) else KafkaError(KafkaError._FAIL, str(exc))
            )
        except BufferError as exc:  # the producer's queue is full: transient
            return KafkaError(KafkaError._QUEUE_FULL, str(exc))
        except Exception as exc:  # anything else is retried like a broker blip
            return KafkaError(KafkaError._FAIL, str(exc))
        return await done

    def close(self, timeout: float = 10.0) -> None:
        producer = self._producer
        if producer is None:
            return
        producer.flush(timeout)
        self._running = False
        self._poller.join(timeout=2)
        if not self._poller.is_alive():
            # librdkafka's handle is destroyed now, while the interpreter is whole. Left to the
            # interpreter's exit, its destroy serves the Python log callback (a refused login
            # keeps librdkafka logging) during finalization, a known way for confluent-kafka
            # to crash the process (a relay that had to exit 1 exited on SIGSEGV once).
            self._producer = None
            del producer


def _settle(future: asyncio.Future[KafkaError | None], outcome: KafkaError | None) -> None:
    if not future.done():
        future.set_result(outcome)
