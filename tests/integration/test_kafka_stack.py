"""The real stack on Kafka 4.x: confluent-kafka produces, a faust app (aiokafka transport)
consumes and commits, and a restarted consumer in the same group resumes after the commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from tests.conftest import ROOT

pytestmark = pytest.mark.integration


def produce(bootstrap: str, topic: str, values: list[str]) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for value in values:
        producer.produce(topic, value.encode())
    assert producer.flush(30) == 0


def committed(bootstrap: str, group: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        [tp] = consumer.committed([TopicPartition(topic, 0)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


def wait_for(predicate, timeout: float, what: str, proc=None) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the faust app exited ({proc.returncode}) before {what}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def start_probe(bootstrap: str, group: str, topic: str, out: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        PROBE_BOOTSTRAP=bootstrap,
        PROBE_GROUP=group,
        PROBE_TOPIC=topic,
        PROBE_OUT=str(out),
        PYTHONPATH=str(ROOT),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.faust_probe", "worker", "-l", "warn"],
        cwd=out.parent,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(out.with_suffix(".log"), "wb"),  # the child owns it
    )


def test_faust_consumes_commits_and_resumes(kafka_bootstrap, make_topic, tmp_path):  # type: ignore[no-untyped-def]
    topic = make_topic("stack")
    group = f"probe-{uuid.uuid4().hex[:8]}"
    out = tmp_path / "seen.txt"
    first = [f"a{i}" for i in range(5)]
    produce(kafka_bootstrap, topic, first)

    probe = start_probe(kafka_bootstrap, group, topic, out)
    try:
        wait_for(lambda: len(lines(out)) >= 5, 90, "the faust app to consume 5 records", probe)
        wait_for(lambda: committed(kafka_bootstrap, group, topic) == 5, 30, "commit at offset 5")
    finally:
        probe.send_signal(signal.SIGKILL)  # no graceful stop: only what was committed counts
        probe.wait(30)
    assert lines(out) == first

    second = [f"b{i}" for i in range(3)]
    produce(kafka_bootstrap, topic, second)
    probe = start_probe(kafka_bootstrap, group, topic, out)
    try:
        wait_for(lambda: len(lines(out)) >= 8, 90, "the restarted app to consume 3 more", probe)
        wait_for(lambda: committed(kafka_bootstrap, group, topic) == 8, 30, "commit at offset 8")
    finally:
        probe.send_signal(signal.SIGTERM)
        probe.wait(60)
    # Resumed after the committed offset: the first five were not read again.
    assert lines(out) == first + second
