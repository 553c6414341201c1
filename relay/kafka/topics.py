"""Reading a whole topic with confluent-kafka: the strike store, ``relay dlq`` and the
reconciliation tools read a small topic from its beginning to the end offsets seen at the start.

"Its beginning" is the low watermark, not offset 0: retention (or DeleteRecords) deletes old
segments, and once it deleted every one, a partition's low and high watermarks are equal and
above 0. Such a partition holds nothing to read. Offsets also have gaps (compaction removes
records, a transaction's commit marker takes an offset no consumer sees), so the record at
``high - 1`` need not exist: a partition is done at the record before its end offset, or at its
end of partition once that lies at or past the end offset. (An end of partition before it is a
transaction still open: its records come once it commits.)
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

RETRY_EVERY = 0.2  # seconds between asks while a partition's leader is not known yet
# What a broker answers for a topic created a moment ago, until its leader is elected and known
# (librdkafka does not flag these errors retriable here).
NOT_YET: frozenset[int] = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._UNKNOWN_PARTITION,
    }
)


def read_topic(config: dict[str, Any], topic: str, timeout: float = 30.0) -> list[Message]:
    """Every record ``topic`` still holds, up to the end offsets seen at the start."""
    consumer = Consumer(
        config
        | {
            "group.id": f"reconcile-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            # retention may delete the first offset between the watermarks and the first fetch
            "auto.offset.reset": "earliest",
        }
    )
    try:
        ends = _ends(consumer, topic, timeout)
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        messages: list[Message] = []
        while ends:
            message = consumer.poll(timeout)
            if message is None:
                raise TimeoutError(f"{topic}: no record within {timeout}s, {ends} left")
            partition, offset = message.partition() or 0, message.offset() or 0
            error = message.error()
            if error is not None:
                # the end of the partition past its end offset: the last offsets held no record
                # (below it, a transaction not yet committed: wait for it)
                if error.code() == KafkaError._PARTITION_EOF and offset >= ends.get(partition, 0):
                    ends.pop(partition, None)
                continue
            if partition in ends and offset < ends[partition]:
                messages.append(message)
            if offset + 1 >= ends.get(partition, 0):
                ends.pop(partition, None)
        return messages
    finally:
        consumer.close()


def _ends(consumer: Consumer, topic: str, timeout: float) -> dict[int, int]:
    """The high watermark of each partition that holds a record (low < high)."""
    metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
    deadline = time.monotonic() + timeout
    ends: dict[int, int] = {}
    for partition in metadata.partitions:
        low, high = _watermarks(consumer, TopicPartition(topic, partition), deadline)
        if high > low:
            ends[partition] = high
    return ends


def _watermarks(consumer: Consumer, partition: TopicPartition, deadline: float) -> tuple[int, int]:
    """The partition's (low, high) watermarks, asked again while the broker answers that it
    has no leader yet: a topic created a moment ago (the strike topic on its first use)."""
    while True:
        try:
            low, high = consumer.get_watermark_offsets(
                partition, max(deadline - time.monotonic(), RETRY_EVERY)
            )
            return low, high
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            retriable = isinstance(error, KafkaError) and (
                error.retriable() or error.code() in NOT_YET
            )
            if not retriable or time.monotonic() >= deadline:
                raise
        time.sleep(RETRY_EVERY)
