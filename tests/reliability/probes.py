"""What a trial reads from outside the relay: committed offsets, where a record landed, /livez.

Only the broker (a plain confluent-kafka consumer) and the relay's HTTP endpoints are asked;
nothing of the relay's code is imported.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from tests.reliability.harness import RelayProcess, wait_for
from tests.reliability.scenario import Scenario

ROOT = Path(__file__).resolve().parents[2]
FAULTY_RELAY = [sys.executable, "-m", "tests.reliability.faulty_relay", "run"]


def _consumer(bootstrap: str, group: str | None = None) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group or f"probe-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "log_level": 2,
        }
    )


def committed(bootstrap: str, group: str, topic: str, partition: int) -> int | None:
    """The group's committed offset of one partition (None: nothing committed yet)."""
    consumer = _consumer(bootstrap, group)
    try:
        [tp] = consumer.committed([TopicPartition(topic, partition)], timeout=15)
        return tp.offset if tp.offset >= 0 else None
    finally:
        consumer.close()


def locate(bootstrap: str, topic: str, value: bytes, timeout: float = 30.0) -> tuple[int, int]:
    """(partition, offset) of the first record of ``topic`` whose value is ``value``."""
    consumer = _consumer(bootstrap)
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        stop = time.monotonic() + timeout
        while time.monotonic() < stop:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            if message.value() == value:
                return message.partition() or 0, message.offset() or 0
        raise AssertionError(f"{topic}: the record was not found within {timeout:g}s")
    finally:
        consumer.close()


def livez(relay: RelayProcess) -> int | None:
    response = relay.get("/livez")
    return None if response is None else response.status_code


def with_planted_bug(relay: RelayProcess, stage: str, event_id: str) -> RelayProcess:
    """Run ``relay`` through tests/reliability/faulty_relay.py: ``stage`` raises for
    ``event_id``."""
    relay.command = list(FAULTY_RELAY)
    path = os.pathsep.join(p for p in (str(ROOT), relay.env.get("PYTHONPATH")) if p)
    relay.env.update(
        PYTHONPATH=path, RELIABILITY_BUG_STAGE=stage, RELIABILITY_BUG_EVENT_ID=event_id
    )
    return relay


def without_planted_bug(relay: RelayProcess) -> RelayProcess:
    """The same replica, the bug fixed (the plain ``relay run``)."""
    relay.command = [sys.executable, "-m", "relay.cli", "run"]
    relay.env.pop("RELIABILITY_BUG_STAGE", None)
    relay.env.pop("RELIABILITY_BUG_EVENT_ID", None)
    return relay


def restart_while_stuck(s: Scenario, relay: RelayProcess, most: int) -> int:
    """The orchestrator of a crash loop: while the scenario is incomplete, wait for /livez to
    fail, then kill and restart ``relay``; at most ``most`` times. The restarts made."""
    restarts = 0
    for restarts in range(1, most + 1):  # noqa: B007 - the count is the answer
        wait_for(
            lambda: livez(relay) == 503 or s.complete(), 90, "/livez to fail", relay.check_alive
        )
        if s.complete():
            break
        relay.kill()
        relay.start()
        relay.wait_assigned()
    return restarts
