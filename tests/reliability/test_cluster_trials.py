"""Trials on the secured, replicated cluster (tests/kafka_cluster.py): the relay consumes over
SASL_SSL/SCRAM; the test produces as the operator (SASL_SSL) and watches over the admin listener.
Every trial reconciles produced vs delivered vs dead-lettered by event id (ledger.py).

- broker failover: the node leading every input partition and the DLQ partition is SIGKILLed
  mid-flow and restarted later; acks=all with min.insync.replicas=2 goes on with two nodes.
- two brokers down (below min.insync, and the KRaft quorum lost): the dead-letter write cannot be
  acknowledged, the relay is not ready and commits nothing past that record; after recovery
  everything arrives.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from relay.pipeline.deadletter import read_topic
from relay.tools.traffic import TrafficGenerator, TrafficPlan
from tests.integration.conftest import SandboxFactory
from tests.kafka_cluster import Cluster, Names
from tests.reliability.conftest import Report
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import Expected, expectations
from tests.reliability.poison import PoisonCorpus
from tests.reliability.scenario import Scenario

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(900)]

# Small poison kinds (no 2 MiB record: the point here is the DLQ's availability, not its size)
POISON = (
    "random-bytes",
    "short-header",
    "truncated-avro",
    "unknown-fingerprint",
    "missing-required-field",
    "nan-xp",
    "far-future",
    "unknown-subject",
)


def poison_for(plan: TrafficPlan, students: int, seed: int) -> list[Expected]:
    out: list[Expected] = []
    for n, student in enumerate(plan.students[:students]):
        course = next(c for c in plan.courses if c.id == plan.enrollments[student])
        out += PoisonCorpus(student, course.id, course.subject, seed=seed + n).corpus(POISON)
    return out


def interleave(records: list[Expected], poison: list[Expected]) -> list[Expected]:
    """``poison`` spread evenly through ``records`` (so dead letters are written all along)."""
    out, step = list(records), max(1, len(records) // (len(poison) + 1))
    for n, bad in enumerate(poison, 1):
        out.insert(n * step + n - 1, bad)
    return out


def secured_scenario(
    cluster: Cluster, names: Names, name: str, box: object, workdir: Path
) -> Scenario:
    s = Scenario(name, cluster.admin_bootstrap, names.topic, names.dlq, box, workdir)
    s.group = names.group  # the group the ACLs name
    s.producer_config = cluster.client_config("operator")
    return s


def test_broker_failover_loses_nothing(
    cluster: Cluster, sandbox_factory: SandboxFactory, tmp_path: Path, report: Report
) -> None:
    box = sandbox_factory()
    names = cluster.names("failover")
    cluster.create_led_by(names, leader=1)
    s = secured_scenario(cluster, names, "broker-failover", box, tmp_path)
    try:
        plan = TrafficGenerator(students=20, seed=43).plan(3000)
        poison = poison_for(plan, students=3, seed=5)
        records = interleave(expectations(plan), poison)
        s.seed_roster(plan)
        relay = s.relay("a", **cluster.relay_env("scram")).start()
        relay.wait_assigned()
        assert set(cluster.leaders(names.topic).values()) == {1}
        assert cluster.leaders(names.dlq) == {0: 1}

        s.produce(records, rate=120)  # ~25 s of traffic
        s.wait_progress(0.25, timeout=180, alive=[relay])
        cluster.kill(1)  # SIGKILL the leader of every input partition and of the DLQ
        killed_at = s.progress()
        s.wait_progress(min(killed_at + 0.3, 0.8), timeout=180, alive=[relay])
        moved = cluster.leaders(names.dlq)[0]
        dlq_while_down = len(s.dlq_watch.letters)
        cluster.start(1)
        s.wait_complete(timeout=300, alive=[relay])
        figures = s.finish()
        figures.notes.update(
            killed_at_progress=round(killed_at, 3),
            dlq_leader_while_down=moved,
            dead_letters_seen_before_restart=dlq_while_down,
        )
        report(figures)
    finally:
        s.close()

    assert moved in (2, 3)
    assert figures.lost == 0, figures.problems
    assert figures.dlq_total == len(poison) and figures.dlq_missing == 0, figures.problems
    assert figures.dlq_unexpected == 0 and figures.dlq_wrong_reason == 0, figures.problems
    assert figures.duplicate_mismatch == 0, "a redelivered event differs from the first"
    assert figures.notes["sigterm_exit"] == {"a": 0}


def committed(cluster: Cluster, names: Names, partition: int) -> int | None:
    """The group's committed offset of ``partition`` (None: no commit, or no answer)."""
    consumer = Consumer({"bootstrap.servers": cluster.admin_bootstrap, "group.id": names.group})
    try:
        (tp,) = consumer.committed([TopicPartition(names.topic, partition)], timeout=10)
        return tp.offset if tp.offset >= 0 else None
    except Exception:  # the coordinator may be one of the nodes that are down
        return None
    finally:
        consumer.close()


def test_two_brokers_down_blocks_the_dead_letter_and_recovers(
    cluster: Cluster, sandbox_factory: SandboxFactory, tmp_path: Path, report: Report
) -> None:
    box = sandbox_factory()
    names = cluster.names("twodown")
    cluster.create_led_by(names, leader=1)
    s = secured_scenario(cluster, names, "two-brokers-down", box, tmp_path)
    try:
        plan = TrafficGenerator(students=10, seed=47).plan(400)
        poison = poison_for(plan, students=1, seed=9)[:1]  # one planted record, mid-stream
        records = interleave(expectations(plan), poison)
        s.seed_roster(plan)
        # a small window: while the API is down the relay holds 8 records and reads no further
        relay = s.relay(
            "a", RELAY_MAX_IN_FLIGHT="4", RELAY_MAX_PENDING="8", **cluster.relay_env("scram")
        ).start()
        relay.wait_assigned()
        box.faults(error_rates={"503": 1.0})  # the API refuses everything: the relay waits
        s.produce(records, wait=True)
        # where the planted record sits: the relay must not commit past it until it is written
        (planted,) = [m for m in read_topic(s.producer_config, names.topic)
                      if m.value() == poison[0].value]  # fmt: skip
        partition, offset = planted.partition() or 0, planted.offset() or 0

        cluster.kill(2)
        cluster.kill(3)  # one node left: below min.insync, and no KRaft quorum
        box.clear_faults()  # the API is back: the relay reads on and meets the planted record
        wait_for(lambda: (relay.metric("dlq_write_failures") or 0) > 0, 180,
                 "a failed dead-letter write", relay.check_alive)  # fmt: skip
        wait_for(lambda: relay.readyz() == 503, 60, "/readyz 503", relay.check_alive)
        failures = relay.metric("dlq_write_failures")
        during = committed(cluster, names, partition)
        time.sleep(5)
        assert not s.dlq_watch.letters, "a dead letter was written below min.insync"

        cluster.start(2, 3)
        s.wait_complete(timeout=300, alive=[relay])
        wait_for(lambda: relay.readyz() == 200, 120, "/readyz 200 again", relay.check_alive)
        after = committed(cluster, names, partition)
        figures = s.finish()
        figures.notes.update(
            planted_at=f"{partition}:{offset}",
            dlq_write_failures=failures,
            committed_while_down=during,
            committed_after=after,
        )
        report(figures)
    finally:
        s.close()

    assert during is None or during <= offset, "committed past an unwritten dead letter"
    assert after is not None and after > offset
    assert figures.lost == 0, figures.problems
    assert figures.dlq_total == 1 and figures.dlq_missing == 0, figures.problems
    assert figures.dlq_unexpected == 0 and figures.duplicate_mismatch == 0, figures.problems
