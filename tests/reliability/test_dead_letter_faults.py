"""Issue 16 item 4 and the trusted sinks' "DLQ topic too small": a dead letter the broker can
never take.

The DLQ topic is created with max.message.bytes=2048 and an 8 KiB undecodable record is
produced among good ones. Its dead-letter write fails with MSG_SIZE_TOO_LARGE every time: no
retry can succeed. What must hold:

- nothing is lost: the record is never acknowledged (its partition waits), the records of other
  partitions are delivered;
- the relay says so: /readyz is 503 and names the permanent DLQ error (not only a flag that a
  write failed, as for a broker blip), so an operator knows retrying will not help.

A failure looks like: the record's offset committed (lost), or /readyz 200, or a /readyz that
does not tell a permanent DLQ error from a transient one.

Not covered here: an ACL-denied DLQ (the test broker runs without an authorizer) and a deleted
DLQ topic (the test broker auto-creates topics, so the write succeeds).
"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from relay.tools.traffic import TrafficGenerator
from tests.conftest import TopicFactory
from tests.integration.conftest import SandboxFactory
from tests.reliability.conftest import Report
from tests.reliability.harness import requires_relay, wait_for
from tests.reliability.ledger import Expected, expectations
from tests.reliability.probes import committed, locate
from tests.reliability.scenario import Scenario

pytestmark = [requires_relay, pytest.mark.reliability, pytest.mark.timeout(180)]

DLQ_MAX_BYTES = 2048
PERMANENT_WORDS = ("too large", "too_large", "permanent", "max.message.bytes")


def test_a_dead_letter_too_large_for_the_dlq_is_reported_as_permanent(
    kafka_bootstrap: str,
    make_topic: TopicFactory,
    sandbox_factory: SandboxFactory,
    report: Report,
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    dlq = make_topic("rel-small-dlq", config={"max.message.bytes": str(DLQ_MAX_BYTES)})
    s = Scenario("small-dlq", kafka_bootstrap, make_topic("rel-small", 3), dlq, box, tmp_path)
    try:
        plan = TrafficGenerator(students=9, seed=211).plan(90)
        s.seed_roster(plan)
        good = expectations(plan)
        big = Expected(
            plan.students[0].encode(),
            b"\x01" + random.Random(211).randbytes(8191),  # neither framing: decode rejects it
            "no-id",
            "XpEarned",
            "too-large-for-the-dlq",
            ("decode", "unknown-framing"),
        )
        relay = s.relay("a", RELAY_SHUTDOWN_GRACE="1").start()
        relay.wait_assigned()
        s.produce([*good[:45], big, *good[45:]], wait=True)
        partition, offset = locate(s.bootstrap, s.topic, big.value)
        wait_for(lambda: relay.readyz() == 503, 30, "/readyz 503", relay.check_alive)
        time.sleep(2)  # commits every second: one would have landed by now
        response = relay.get("/readyz")
        body = response.json() if response is not None else {}
        failures = relay.metric("dlq_write_failures") or 0.0
        after = committed(s.bootstrap, s.group, s.topic, partition)
        figures = s.finish()
        figures.notes.update(readyz=body, dlq_write_failures=failures, committed=after,
                             record_offset=offset)  # fmt: skip
        report(figures)
    finally:
        s.close()

    assert after is None or after <= offset, "the undeliverable record was committed past"
    assert failures > 0, "the DLQ write never failed: the trial proves nothing"
    said = " ".join(str(v) for v in body.values()).lower()
    assert not body.get("ready", True) and any(w in said for w in PERMANENT_WORDS), (
        f"/readyz does not name the permanent DLQ error: {body}"
    )
