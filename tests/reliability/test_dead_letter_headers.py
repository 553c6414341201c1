"""Issue 23 item 6: a record whose Kafka metadata is impossible can still be dead-lettered.

Kafka keeps the producer's CreateTime as given (the topic below accepts any, as every topic did
before Kafka 4.0 bounded future timestamps by default), so a record can claim the year 10000 or
292 million. Such records, undecodable too, are produced between good ones of the same
partition, with header values no text decoding survives and a header without a value. Each must
end in the dead-letter topic with its reason, and the good records after it must be delivered:
a dead letter that cannot be built blocks its partition for good.

A failure looks like: the planted records missing from the DLQ and the partition's committed
offset stuck before them (/livez failing: a restart meets them again), or the relay restarting.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from relay.tools.traffic import TrafficGenerator
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report, ScenarioFactory
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import Expected, expectations
from tests.reliability.probes import committed
from tests.reliability.scenario import Scenario

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(300)]

INT64_MAX = 2**63 - 1
NOW_MS = int(time.time() * 1000)
# kind -> (CreateTime in ms, headers): what the broker keeps and the relay must survive
PLANTED: dict[str, tuple[int, list[tuple[str, bytes | None]]]] = {
    "year-10000": (253_402_300_800_000, []),  # 10000-01-01: past datetime's year 9999
    "int64-max": (INT64_MAX, []),  # the largest CreateTime Kafka can carry
    "binary-headers": (NOW_MS, [("trace", b"\xff\xfe\x00\xc3"), ("relay.detail", b"\x80")]),
    "null-header": (NOW_MS, [("no-value", None)]),
    "all-at-once": (INT64_MAX, [("no-value", None), ("bin", b"\xed\xa0\x80")]),
}


def _accept_any_timestamp(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(
        ConfigResource.Type.TOPIC,
        topic,
        incremental_configs=[
            ConfigEntry(name, str(INT64_MAX), incremental_operation=AlterConfigOpType.SET)
            for name in ("message.timestamp.after.max.ms", "message.timestamp.before.max.ms")
        ],
    )
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=60)


def _produce_planted(s: Scenario, key: bytes | None) -> list[Expected]:
    """The planted records, each undecodable (first byte 0x05: no framing the relay knows)."""
    reason = ("decode", "unknown-framing")
    planted = [
        Expected(key, b"\x05planted " + kind.encode(), kind, "XpEarned", kind, reason)
        for kind in PLANTED
    ]
    s.expect(planted)
    producer = Producer({"bootstrap.servers": s.bootstrap, "acks": "all"})
    errors: list[Any] = []
    for record in planted:
        timestamp, headers = PLANTED[record.kind]
        producer.produce(
            s.topic,
            record.value,
            record.key,
            timestamp=timestamp,
            headers=headers,  # type: ignore[arg-type]
            on_delivery=lambda err, _m: errors.append(err) if err else None,
        )
    assert producer.flush(60) == 0 and not errors, f"the broker refused: {errors}"
    return planted


def test_records_with_impossible_metadata_are_dead_lettered_and_the_partition_moves_on(
    scenario: ScenarioFactory, sandbox_factory: SandboxFactory, report: Report
) -> None:
    s = scenario("impossible-metadata", sandbox_factory(), partitions=1)
    _accept_any_timestamp(s.bootstrap, s.topic)
    plan = TrafficGenerator(students=4, seed=236).plan(150)
    s.seed_roster(plan)
    records = expectations(plan)

    relay = s.relay("a").start()
    relay.wait_assigned()
    s.produce(records[:50], wait=True)
    planted = _produce_planted(s, records[0].key)
    s.produce(records[50:])  # behind the planted records in the one partition
    s.wait_complete(timeout=120, alive=[relay])
    end = len(records) + len(planted)  # the partition moved on: committed to its end
    wait_for(lambda: committed(s.bootstrap, s.group, s.topic, 0) == end, 60, "the commit")
    figures = s.finish()
    stamps = {
        x.value: x.headers.get("relay.source.timestamp", b"").decode() for x in s.dlq_watch.letters
    }
    figures.notes["source_timestamps"] = {p.kind: stamps.get(p.value) for p in planted}
    report(figures)

    assert relay.starts == 1
    assert figures.lost == 0 and figures.dlq_missing == 0, figures.problems
    assert figures.dlq_wrong_reason == 0 and figures.dlq_unexpected == 0, figures.problems
    letters = {x.value: x for x in s.dlq_watch.letters}
    for record in planted:  # the original headers kept whole, bytes and null values alike
        kept = {
            k: v for k, v in letters[record.value].headers.items() if not k.startswith("relay.")
        }
        wanted = {k: v or b"" for k, v in PLANTED[record.kind][1] if not k.startswith("relay.")}
        assert kept == wanted, (record.kind, kept)
