"""Issue 23 item 3: topics that age. Retention deletes a topic's old segments; once it deleted
every one, the partition's low watermark equals its high one and is above 0 (``low == high > 0``).
Here the segments are deleted for real on the real broker (``DeleteRecords`` through the admin
client: the broker advances the log start offset and drops the segments below it, exactly what
retention does, without waiting for the retention checker).

- The strike topic (quarantine's store, ``compact,delete``, a week) aged out: a deterministic
  processing bug must still be quarantined after its restarts, as on a fresh topic.
- The dead-letter topic aged out: ``relay dlq inspect`` reads it as empty, and once new dead
  letters arrive, ``inspect`` counts them and ``replay`` sends them again.

A failure looks like: no ``relay/processing-bug`` dead letter after the restarts (the strike
count timed out, "processing bugs cannot be counted" in the log), or ``relay dlq`` exiting 1
with a ``TimeoutError`` on the aged dead-letter topic.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import Expected, expectations
from tests.reliability.probes import restart_while_stuck, with_planted_bug
from tests.reliability.scenario import Scenario

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(420)]

RESTARTS = 3  # RELAY_QUARANTINE_AFTER's default: restarts before the record is quarantined
WEEK_MS = 7 * 24 * 3600 * 1000
Marks = dict[int, tuple[int, int]]  # partition -> (low, high) watermarks


def expire(bootstrap: str, topic: str) -> Marks:
    """Delete every record of every partition of ``topic`` on the broker, as retention does;
    the (low, high) watermarks of each partition afterwards."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = admin.list_topics(topic, timeout=30).topics[topic].partitions
    futures = admin.delete_records(
        [TopicPartition(topic, p, OFFSET_END) for p in partitions], operation_timeout=30
    )
    for future in futures.values():
        future.result(timeout=60)
    return watermarks(bootstrap, topic)


def watermarks(bootstrap: str, topic: str) -> Marks:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watermarks"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            for p in partitions
        }
    finally:
        consumer.close()


@pytest.fixture
def aged_strike_topic(kafka_bootstrap: str) -> Iterator[Callable[[str], Marks]]:
    """Makes ``<dlq>.strikes`` as the relay makes it, with a week-old strike of another record
    that retention then deleted (low == high > 0); removed after the test."""
    made: list[str] = []

    def age(dlq: str) -> Marks:
        topic = f"{dlq}.strikes"  # RELAY_QUARANTINE_TOPIC's default
        config = {"cleanup.policy": "compact,delete", "retention.ms": str(WEEK_MS)}
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        future = admin.create_topics([NewTopic(topic, 1, 1, config=config)])[topic]
        future.result(timeout=60)
        made.append(topic)
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "acks": "all"})
        producer.produce(topic, b"2", b"an-old-group|activity|0|17|0123456789abcdef")
        assert producer.flush(30) == 0
        return expire(kafka_bootstrap, topic)

    yield age
    if made:
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        for future in admin.delete_topics(made, operation_timeout=30).values():
            with contextlib.suppress(Exception):  # best effort, as tests/conftest.py
                future.result(timeout=30)


def test_quarantine_still_counts_once_the_strike_topic_aged_out(
    scenario: ScenarioFactory,
    sandbox_factory: SandboxFactory,
    aged_strike_topic: Callable[[str], Marks],
    report: Report,
) -> None:
    s = scenario("aged-strikes", sandbox_factory(), partitions=1)
    marks = aged_strike_topic(s.dlq)
    assert marks == {0: (1, 1)}, f"the strike topic did not age as retention would: {marks}"

    plan = TrafficGenerator(students=6, seed=231).plan(120)
    s.seed_roster(plan)
    records = expectations(plan)
    bug = next(r for r in records[40:] if r.valid)  # not the first: acks before it
    bug = Expected(bug.key, bug.value, bug.event_id, bug.record_type, "processing-bug",
                   ("relay", "processing-bug"))  # fmt: skip
    relay = with_planted_bug(s.relay("a"), "map", bug.event_id).start()
    relay.wait_assigned()
    s.produce([bug if r.event_id == bug.event_id else r for r in records], wait=True)

    # The orchestrator: /livez fails (or the record is already quarantined), restart.
    restarts = restart_while_stuck(s, relay, RESTARTS)
    with contextlib.suppress(AssertionError):  # reconciled below
        s.wait_complete(timeout=60, alive=[relay])
    log = relay.logs()
    figures = s.finish(trials=restarts)
    figures.notes.update(restarts=restarts, strike_topic_watermarks=marks)
    report(figures)

    assert "cannot be counted" not in log, "the strike store failed on the aged topic"
    assert "relay/processing-bug" in figures.dlq_by_reason, figures.dlq_by_reason
    assert figures.lost == 0 and figures.dlq_unexpected == 0, figures.problems


def relay_dlq(s: Scenario, *args: str) -> subprocess.CompletedProcess[str]:
    """``relay dlq ARGS`` as an operator runs it, with the scenario's settings."""
    return subprocess.run(
        [sys.executable, "-m", "relay.cli", "dlq", *args],
        env=s.env() | {"COLUMNS": "200"},
        cwd=s.workdir,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _batch(s: Scenario, seed: int) -> list[Expected]:
    plan = TrafficGenerator(students=4, invalid_ratio=0.1, seed=seed).plan(80)
    s.seed_roster(plan)
    return expectations(plan)


def test_dlq_tools_read_a_dead_letter_topic_whose_segments_expired(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    s = scenario("aged-dlq", sandbox_factory(), partitions=2)
    s.workdir.mkdir(parents=True, exist_ok=True)
    relay = s.relay("a").start()
    relay.wait_assigned()
    old = _batch(s, 232)
    s.produce(old, wait=True)
    s.wait_complete(timeout=120, alive=[relay])
    marks = expire(s.bootstrap, s.dlq)
    assert all(low == high > 0 for low, high in marks.values()), marks

    aged = relay_dlq(s, "inspect")
    assert aged.returncode == 0, aged.stderr[-2000:]
    assert "0 dead letters" in aged.stdout, aged.stdout

    new = _batch(s, 233)  # the relay, still running, dead-letters into the aged topic
    s.produce(new, wait=True)
    s.wait_complete(timeout=120, alive=[relay])
    planted = sum(1 for r in new if not r.valid)
    inspect = relay_dlq(s, "inspect")
    assert inspect.returncode == 0, inspect.stderr[-2000:]
    assert f"{planted} dead letters" in inspect.stdout, inspect.stdout
    replay = relay_dlq(s, "replay")
    assert replay.returncode == 0, replay.stderr[-2000:]
    assert f"replayed {planted} records" in replay.stdout, replay.stdout

    def replayed() -> int:
        s.poll()
        return sum(1 for x in s.dlq_watch.letters if x.headers.get("relay.replays") == b"1")

    wait_for(lambda: replayed() == planted, 120, "the replayed records back in the DLQ")
    figures = s.finish()
    figures.notes.update(dlq_watermarks_after_expiry=marks, replayed=planted)
    report(figures)

    assert relay.starts == 1
    assert figures.lost == 0 and figures.dlq_missing == 0, figures.problems
    assert figures.dlq_duplicates == planted, "each replayed record is dead-lettered once more"
