"""The dead-letter writer against the real broker: a write the broker refuses is counted, marks
the relay not ready and is retried (the record waits, it is never skipped); once the broker takes
it, exactly one dead letter is there and the relay is healthy again. A record too large for the
topic is a permanent failure: counted by error name and named in the health reason."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from relay.errors import Rejection
from relay.metrics import DLQ_PERMANENT_FAILURES, DLQ_WRITE_FAILURES, DLQ_WRITES
from relay.ops.dead_letters import dead_letters
from relay.pipeline.deadletter import DeadLetterWriter
from relay.pipeline.record import SourceRecord
from relay.resilience import Backoff

pytestmark = pytest.mark.integration


@pytest.fixture
def tiny_topic(kafka_bootstrap: str) -> Iterator[tuple[AdminClient, str]]:
    """A DLQ topic that refuses any record over 512 bytes (MESSAGE_TOO_LARGE)."""
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    name = f"dlq-tiny-{uuid.uuid4().hex[:10]}"
    topic = NewTopic(name, 1, 1, config={"max.message.bytes": "512"})
    admin.create_topics([topic], operation_timeout=30)[name].result(timeout=60)
    yield admin, name
    admin.delete_topics([name], operation_timeout=30)


def _failures() -> float:
    return DLQ_WRITE_FAILURES._value.get()


async def test_a_refused_write_blocks_counts_and_recovers(
    kafka_bootstrap: str, tiny_topic: tuple[AdminClient, str]
) -> None:
    admin, topic = tiny_topic
    config = {"bootstrap.servers": kafka_bootstrap}
    writer = DeadLetterWriter(config, topic, backoff=Backoff(0.05, 0.2))
    record = SourceRecord("in", 0, 7, None, b"student-1", b"x" * 2000, [("h", b"1")])
    rejection = Rejection("enrich", "course-unresolved", "no course", first_failure=0.0)
    failures_before = _failures()
    writes_before = DLQ_WRITES.labels("course-unresolved")._value.get()
    too_large = DLQ_PERMANENT_FAILURES.labels("MSG_SIZE_TOO_LARGE")
    permanent_before = too_large._value.get()
    try:
        write = asyncio.create_task(writer.write(record, rejection))
        while _failures() < failures_before + 2:  # refused, retried, refused again
            assert not write.done(), "the write returned although the broker refused it"
            await asyncio.sleep(0.05)
        assert not writer.health.dlq_healthy
        assert not write.done()
        assert too_large._value.get() >= permanent_before + 2
        reason = writer.health.reasons()["dlq_healthy"]
        assert "permanently (MSG_SIZE_TOO_LARGE)" in reason and "max.message.bytes" in reason

        resource = ConfigResource(
            ConfigResource.Type.TOPIC,
            topic,
            incremental_configs=[
                ConfigEntry(
                    "max.message.bytes", "1048576", incremental_operation=AlterConfigOpType.SET
                )
            ],
        )
        admin.incremental_alter_configs([resource])[resource].result(timeout=30)
        await asyncio.wait_for(write, 60)
    finally:
        writer.close()
    assert writer.health.dlq_healthy
    assert DLQ_WRITES.labels("course-unresolved")._value.get() == writes_before + 1
    [letter] = dead_letters(config, topic)
    assert letter.value == record.value and letter.key == record.key
    assert (letter.stage, letter.reason) == ("enrich", "course-unresolved")
    assert letter.headers["h"] == b"1"
    assert letter.headers["relay.source.offset"] == b"7"


async def test_a_closed_writer_lets_go_of_its_client_and_a_late_write_waits_unacknowledged(
    kafka_bootstrap: str,
) -> None:
    """``close`` destroys librdkafka's handle then and there (left to the interpreter's exit,
    its destroy can run Python callbacks during finalization and crash the process); a write
    that comes after it fails like a broker that refuses, counted and retried, never done: its
    record stays unacknowledged, to be read again by the next process."""
    writer = DeadLetterWriter(
        {"bootstrap.servers": kafka_bootstrap}, f"dlq-{uuid.uuid4().hex[:10]}",
        backoff=Backoff(0.05, 0.2),
    )  # fmt: skip
    writer.close()
    assert writer._producer is None  # the native client is gone, not waiting for exit
    writer.close()  # twice is harmless
    record = SourceRecord("in", 0, 8, None, b"student-1", b"x", [])
    failures_before = _failures()
    write = asyncio.create_task(writer.write(record, Rejection("map", "bug", "late")))
    try:
        while _failures() < failures_before + 2:
            assert not write.done(), "a write after close returned (or raised)"
            await asyncio.sleep(0.05)
        assert not writer.health.dlq_healthy
        assert "closed" in writer.health.reasons()["dlq_healthy"]
    finally:
        write.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await write
