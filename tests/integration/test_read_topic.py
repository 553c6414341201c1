"""``read_topic`` (relay/kafka/topics.py) against the real broker, on the shapes an aged or
transactional topic takes: segments deleted below the low watermark (all of them: low == high >
0), and offsets no consumer sees (a transaction's commit marker at the end)."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from relay.kafka.topics import read_topic
from tests.conftest import TopicFactory
from tests.reliability.harness import wait_for

pytestmark = pytest.mark.integration

GUARD = 10.0  # seconds read_topic waits for a record before it gives up (a hang guard)


def _produce(bootstrap: str, topic: str, values: list[bytes], partition: int = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for value in values:
        producer.produce(topic, value, partition=partition)
    assert producer.flush(30) == 0


def _delete_before(bootstrap: str, topic: str, offset: int, partition: int = 0) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.delete_records([TopicPartition(topic, partition, offset)])
    for future in futures.values():
        future.result(timeout=60)


def _values(bootstrap: str, topic: str) -> list[bytes | None]:
    return [m.value() for m in read_topic({"bootstrap.servers": bootstrap}, topic, GUARD)]


def test_an_empty_topic_reads_empty(kafka_bootstrap: str, make_topic: TopicFactory) -> None:
    assert _values(kafka_bootstrap, make_topic("read-empty", partitions=2)) == []


def test_a_topic_whose_every_segment_was_deleted_reads_empty(
    kafka_bootstrap: str, make_topic: TopicFactory
) -> None:
    topic = make_topic("read-aged", partitions=2)
    _produce(kafka_bootstrap, topic, [b"old-0", b"old-1"], partition=0)
    _produce(kafka_bootstrap, topic, [b"kept"], partition=1)
    _delete_before(kafka_bootstrap, topic, OFFSET_END, partition=0)  # low == high == 2
    assert _values(kafka_bootstrap, topic) == [b"kept"]


def test_a_partly_aged_topic_reads_from_its_low_watermark(
    kafka_bootstrap: str, make_topic: TopicFactory
) -> None:
    topic = make_topic("read-partly")
    _produce(kafka_bootstrap, topic, [b"a", b"b", b"c", b"d"])
    _delete_before(kafka_bootstrap, topic, 2)
    assert _values(kafka_bootstrap, topic) == [b"c", b"d"]


def test_a_topic_ending_in_a_transaction_marker_is_read_to_its_end(
    kafka_bootstrap: str, make_topic: TopicFactory
) -> None:
    """The commit marker takes the last offset: the record at high - 1 never comes."""
    topic = make_topic("read-txn")
    producer = Producer(
        {"bootstrap.servers": kafka_bootstrap, "transactional.id": f"t-{uuid.uuid4().hex}"}
    )
    producer.init_transactions(30)
    producer.begin_transaction()
    producer.produce(topic, b"in-a-transaction")
    producer.commit_transaction(30)
    # The coordinator writes the commit marker after commit_transaction returns: wait for it.
    watcher = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "watermarks"})
    partition = TopicPartition(topic, 0)
    try:
        wait_for(lambda: watcher.get_watermark_offsets(partition, 10)[1] == 2, 60, "the marker")
    finally:
        watcher.close()
    assert _values(kafka_bootstrap, topic) == [b"in-a-transaction"]
