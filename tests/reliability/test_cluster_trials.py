"""Trials on the secured, replicated cluster (tests/kafka_cluster.py): the relay consumes over
SASL_SSL/SCRAM; the test produces as the operator (SASL_SSL) and watches over the admin listener.
Every trial reconciles produced vs delivered vs dead-lettered by event id (ledger.py).

- broker failover: the node leading every input partition and the DLQ partition is SIGKILLed
  mid-flow and restarted later; acks=all with min.insync.replicas=2 goes on with two nodes.
- two brokers down (below min.insync, and the KRaft quorum lost): the dead-letter write cannot be
  acknowledged, the relay is not ready and commits nothing past that record; after recovery
  everything arrives.
- credentials rotated: see test_scram_rotation.py (rotated while the relay runs, then a restart
  with the stale secret, then with the new one).
- scale out and in: replicas 1 -> 3 -> 1 while 5,000 records flow; duplicates reported.
- a refused login (wrong SCRAM password): the relay stays up, not ready, with a metric.
- DLQ denied (no WRITE ACL on it): a permanent dead-letter error named in /readyz; the partition
  waits; after the grant everything arrives.
- DLQ deleted (after dead letters were written; no auto-create): the same, until the operator
  re-creates the topic.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from relay.kafka.topics import read_topic
from relay.tools.traffic import TrafficGenerator, TrafficPlan
from tests.integration.conftest import SandboxFactory
from tests.integration.pipeline_helpers import samples
from tests.kafka_cluster import Cluster, Names
from tests.reliability.conftest import Report
from tests.reliability.harness import RelayProcess, requires_relay, wait_for
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
    # Read the coordinator once the leaders are where they stay: after the failover trial's
    # restart of node 1 the controller hands node 1 its partitions back on its own; one run had
    # node 1 coordinate the group by the time the others were killed, and timed out below.
    cluster.settle_leaders("__consumer_offsets")
    names = cluster.names("twodown")
    while cluster.coordinator(names.group) != 3:
        # Coordinated by the surviving node, the group's commits fail (its offsets need 2
        # replicas) and, in one run of four, the relay never met the planted record in 180 s.
        # Coordinated by a node that goes down, the member keeps its partitions and reads on,
        # but only by node 3, the one killed last: node 2 goes first, and while 1 and 3 are
        # still a KRaft quorum the controller may move node 2's partitions to node 1; a group
        # coordinated by node 2 then lands on the surviving node (one loaded CI run: a
        # heartbeat refused by node 1 three seconds after the kills, the member expelled, its
        # records revoked mid dead-letter, and no rejoin without a second replica).
        names = cluster.names("twodown")
    cluster.create_led_by(names, leader=1)
    s = secured_scenario(cluster, names, "two-brokers-down", box, tmp_path)
    down = False
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
        admin = {"bootstrap.servers": cluster.admin_bootstrap}
        (planted,) = [m for m in read_topic(admin, names.topic)
                      if m.value() == poison[0].value]  # fmt: skip
        partition, offset = planted.partition() or 0, planted.offset() or 0

        down = True
        cluster.kill(2)
        cluster.kill(3)  # one node left: below min.insync, and no KRaft quorum
        box.clear_faults()  # the API is back: the relay reads on and meets the planted record
        try:
            wait_for(lambda: (relay.metric("dlq_write_failures") or 0) > 0, 180,
                     "a failed dead-letter write", relay.check_alive)  # fmt: skip
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{relay.tail()}") from None
        wait_for(lambda: relay.readyz() == 503, 60, "/readyz 503", relay.check_alive)
        failures = relay.metric("dlq_write_failures")
        during = committed(cluster, names, partition)
        time.sleep(5)
        assert not s.dlq_watch.letters, "a dead letter was written below min.insync"

        cluster.start(2, 3)
        down = False
        s.wait_complete(timeout=300, alive=[relay])
        wait_for(lambda: relay.readyz() == 200, 120, "/readyz 200 again", relay.check_alive)
        wait_for(lambda: (committed(cluster, names, partition) or 0) > offset, 120,
                 "the commit past the planted record", relay.check_alive)  # fmt: skip
        figures = s.finish()
        figures.notes.update(
            planted_at=f"{partition}:{offset}",
            dlq_write_failures=failures,
            committed_while_down=during,
        )
        report(figures)
    finally:
        s.close()
        if down:  # the next trials need all three nodes
            cluster.start(2, 3)

    assert during is None or during <= offset, "committed past an unwritten dead letter"
    assert figures.lost == 0, figures.problems
    # The write that timed out below min.insync may still land when the replicas return, beside
    # its retry: a dead-letter duplicate (reported), never a missing one.
    assert figures.dlq_missing == 0 and figures.dlq_wrong_reason == 0, figures.problems
    assert figures.dlq_unexpected == 0 and figures.duplicate_mismatch == 0, figures.problems


def test_a_refused_kafka_login_keeps_the_relay_up_not_ready_with_a_metric(
    cluster: Cluster, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    box = sandbox_factory()
    names = cluster.topics("refused")
    s = secured_scenario(cluster, names, "refused-login", box, tmp_path)
    try:
        wrong = {"RELAY_KAFKA_SASL_PASSWORD": f"wrong-{uuid.uuid4().hex}"}
        relay = s.relay("a", **(cluster.relay_env("scram") | wrong)).start()
        wait_for(lambda: relay.readyz() == 503, 60, "/readyz 503", relay.check_alive)
        time.sleep(5)
        relay.check_alive()
        assert (relay.metric("kafka_auth_failures") or 0) > 0
    finally:
        s.close()


def assigned(relay: RelayProcess) -> float:
    return relay.metric("assigned_partitions") or 0.0


def test_scale_out_and_in_under_load(
    cluster: Cluster, sandbox_factory: SandboxFactory, tmp_path: Path, report: Report
) -> None:
    """Replicas 1 -> 3 -> 1 (static membership, SIGTERM drain) while 5,000 records flow."""
    box = sandbox_factory()
    names = cluster.topics("scale")
    s = secured_scenario(cluster, names, "scale-1-3-1", box, tmp_path)
    try:
        plan = TrafficGenerator(students=30, seed=59).plan(5000)
        s.seed_roster(plan)
        scram = cluster.relay_env("scram")
        a = s.relay("a", **scram).start()
        a.wait_assigned()
        s.produce(expectations(plan), rate=200)  # ~25 s of traffic
        s.wait_progress(0.15, timeout=180, alive=[a])

        b, c = s.relay("b", **scram).start(), s.relay("c", **scram).start()
        wait_for(lambda: all(assigned(r) == 1 for r in (a, b, c)), 180,
                 "three replicas with a partition each",
                 lambda: [r.check_alive() for r in (a, b, c)])  # fmt: skip
        scaled_out_at = s.progress()
        s.wait_progress(min(scaled_out_at + 0.25, 0.8), timeout=180, alive=[a, b, c])
        exits = {"b": b.terminate(), "c": c.terminate()}  # scale in: SIGTERM, drain
        wait_for(lambda: assigned(a) == 3, 120, "a owns every partition again", a.check_alive)
        s.wait_complete(timeout=300, alive=[a])
        figures = s.finish()
        figures.notes.update(scaled_out_at=round(scaled_out_at, 3), scale_in_exits=exits)
        report(figures)
    finally:
        s.close()

    assert exits == {"b": 0, "c": 0}, "SIGTERM: a clean drain"
    assert figures.lost == 0, figures.problems
    assert figures.duplicate_mismatch == 0, "a redelivered event differs from the first"
    assert figures.dlq_total == 0 and figures.dlq_unexpected == 0, figures.problems


def test_a_denied_dead_letter_is_reported_as_permanent_and_recovers_once_granted(
    cluster: Cluster, sandbox_factory: SandboxFactory, tmp_path: Path, report: Report
) -> None:
    """Issue 16 item 4 and the trusted sinks' "DLQ denied": the relay's principal lacks WRITE on
    the DLQ topic. Its partition must wait (nothing committed past the planted record), /readyz
    must name the permanent error, and once the operator grants the ACL the dead letter lands
    and everything arrives, with no restart. A failure: the offset committed past, /readyz 200
    or not naming TOPIC_AUTHORIZATION_FAILED, or no recovery after the grant."""
    box = sandbox_factory()
    names = cluster.topics("denied", dlq=False)
    s = secured_scenario(cluster, names, "dlq-denied", box, tmp_path)
    try:
        plan = TrafficGenerator(students=6, seed=61).plan(120)
        poison = poison_for(plan, students=1, seed=13)[:1]  # one planted record, mid-stream
        records = interleave(expectations(plan), poison)
        s.seed_roster(plan)
        relay = s.relay("a", **cluster.relay_env("scram")).start()
        relay.wait_assigned()
        s.produce(records, wait=True)
        admin = {"bootstrap.servers": cluster.admin_bootstrap}
        (planted,) = [m for m in read_topic(admin, names.topic)
                      if m.value() == poison[0].value]  # fmt: skip
        partition, offset = planted.partition() or 0, planted.offset() or 0
        wait_for(lambda: (relay.metric("dlq_permanent_failures") or 0) > 0, 120,
                 "a permanently refused dead-letter write", relay.check_alive)  # fmt: skip
        wait_for(lambda: relay.readyz() == 503, 60, "/readyz 503", relay.check_alive)
        time.sleep(3)  # commits every second: one would have landed by now
        response = relay.get("/readyz")
        body = response.json() if response is not None else {}
        during = committed(cluster, names, partition)

        cluster.grant(names)  # the operator adds WRITE on the DLQ topic
        s.wait_complete(timeout=180, alive=[relay])
        wait_for(lambda: relay.readyz() == 200, 120, "/readyz 200 again", relay.check_alive)
        figures = s.finish()
        figures.notes.update(planted_at=f"{partition}:{offset}", committed_while_denied=during,
                             readyz_while_denied=body)  # fmt: skip
        report(figures)
    finally:
        s.close()

    reasons = body.get("reasons", {})
    assert "permanently (TOPIC_AUTHORIZATION_FAILED)" in reasons.get("dlq_healthy", ""), body
    assert during is None or during <= offset, "committed past an unwritten dead letter"
    assert figures.lost == 0, figures.problems
    assert figures.dlq_missing == 0 and figures.dlq_wrong_reason == 0, figures.problems
    assert figures.dlq_unexpected == 0 and figures.duplicate_mismatch == 0, figures.problems


def delete_topic(cluster: Cluster, topic: str) -> None:
    """Delete ``topic`` and wait until the metadata no longer lists it."""
    admin = cluster.admin()
    for future in admin.delete_topics([topic], operation_timeout=60).values():
        future.result(timeout=60)
    wait_for(lambda: topic not in admin.list_topics(timeout=30).topics, 60, f"{topic} gone")


def test_a_deleted_dead_letter_topic_is_reported_as_permanent_and_recovers_once_recreated(
    cluster: Cluster, sandbox_factory: SandboxFactory, tmp_path: Path, report: Report
) -> None:
    """Issue 16 item 4, "topic deleted": the relay has written dead letters, then the DLQ topic
    is deleted (the cluster does not auto-create topics) while more poison arrives. The first
    poison record after the deletion must hold its partition (nothing committed past it),
    /readyz must name the permanent unknown-topic error, and once the operator re-creates the
    topic every dead letter lands and everything arrives, with no restart. A failure: the
    offset committed past, /readyz 200 or naming no unknown topic, or no recovery (e.g. the
    idempotent producer wedged on the old topic's sequence numbers)."""
    box = sandbox_factory()
    names = cluster.topics("dlqgone")
    s = secured_scenario(cluster, names, "dlq-deleted", box, tmp_path)
    try:
        plan = TrafficGenerator(students=6, seed=67).plan(160)
        poison = poison_for(plan, students=1, seed=17)[:5]
        valid = expectations(plan)
        before = interleave(valid[:80], poison[:2])  # dead letters the relay writes first
        after = interleave(valid[80:], poison[2:])  # poison arriving while the topic is gone
        s.seed_roster(plan)
        relay = s.relay("a", **cluster.relay_env("scram")).start()
        relay.wait_assigned()
        s.produce(before, wait=True)
        s.wait_complete(timeout=120, alive=[relay])
        s.dlq_watch.drain()
        written_before = len(s.dlq_watch.letters)

        delete_topic(cluster, names.dlq)
        s.produce(after, wait=True)
        admin = {"bootstrap.servers": cluster.admin_bootstrap}
        values = {r.value for r in after if not r.valid}
        planted = [m for m in read_topic(admin, names.topic) if m.value() in values]
        assert len({m.partition() for m in planted}) == 1, "one student's poison: one partition"
        # the first poison record after the deletion: no commit may pass it until it is written
        offset = min(m.offset() or 0 for m in planted)
        partition = planted[0].partition() or 0
        wait_for(lambda: (relay.metric("dlq_permanent_failures") or 0) > 0, 120,
                 "a permanently failing dead-letter write", relay.check_alive)  # fmt: skip
        wait_for(lambda: relay.readyz() == 503, 60, "/readyz 503", relay.check_alive)
        time.sleep(3)  # commits every second: one would have landed by now
        response = relay.get("/readyz")
        body = response.json() if response is not None else {}
        during = committed(cluster, names, partition)
        permanent = {dict(labels).get("error"): n
                     for labels, n in samples(relay, "dlq_permanent_failures").items()}  # fmt: skip

        cluster.grant(names)  # the operator re-creates the topic (its ACLs outlived it)
        s.dlq_watch.reopen()  # the new topic's offsets start over
        s.wait_complete(timeout=120, alive=[relay])
        wait_for(lambda: relay.readyz() == 200, 60, "/readyz 200 again", relay.check_alive)
        figures = s.finish()
        figures.notes.update(planted_at=f"{partition}:{offset}", committed_while_gone=during,
                             dead_letters_before_deletion=written_before,
                             dlq_permanent_failures=permanent,
                             readyz_while_gone=body)  # fmt: skip
        report(figures)
    finally:
        s.close()

    reasons = body.get("reasons", {})
    assert "fail permanently (" in reasons.get("dlq_healthy", ""), body
    assert "UNKNOWN_TOPIC" in reasons.get("dlq_healthy", ""), body
    assert permanent.keys() & {"_UNKNOWN_TOPIC", "UNKNOWN_TOPIC_OR_PART"}, permanent
    assert during is None or during <= offset, "committed past an unwritten dead letter"
    assert figures.lost == 0, figures.problems
    assert figures.dlq_missing == 0 and figures.dlq_wrong_reason == 0, figures.problems
    assert figures.dlq_unexpected == 0 and figures.duplicate_mismatch == 0, figures.problems
