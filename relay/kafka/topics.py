"""Reading a whole topic with confluent-kafka: the strike store, ``relay dlq`` and the
reconciliation tools read a small topic from its beginning to the end offsets seen at the start.
"""

from __future__ import annotations

import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition


def read_topic(config: dict[str, Any], topic: str, timeout: float = 30.0) -> list[Message]:
    """Every record of ``topic`` from the beginning to the end offsets seen at the start."""
    consumer = Consumer(
        config | {"group.id": f"reconcile-{uuid.uuid4().hex}", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=timeout).topics[topic]
        ends: dict[int, int] = {}
        for partition in metadata.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout)
            if high > 0:
                ends[partition] = high
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        messages: list[Message] = []
        remaining = dict(ends)
        while remaining:
            message = consumer.poll(timeout)
            if message is None:
                raise TimeoutError(f"{topic}: no record within {timeout}s, {remaining} left")
            if message.error():
                continue
            messages.append(message)
            partition, offset = message.partition() or 0, message.offset() or 0
            if offset + 1 >= remaining.get(partition, 0):
                remaining.pop(partition, None)
        return messages
    finally:
        consumer.close()
