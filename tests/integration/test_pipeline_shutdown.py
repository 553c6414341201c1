"""SIGTERM with records in flight: ``relay run`` stops admitting, drains for
RELAY_SHUTDOWN_GRACE seconds, commits what finished and exits 0. Records that finish in the grace
are committed; the ones that do not are redelivered after a restart. None is lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import SandboxFactory
from tests.integration.pipeline_helpers import (
    committed,
    ledger_total,
    letters,
    produce,
    running_relay,
    seed_students,
    wait_acked,
    wait_committed,
    wait_in_flight,
    xp_record,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
STUDENTS = [f"student-{n:02d}" for n in range(12)]


def test_records_in_flight_finish_within_the_grace_and_are_committed(
    kafka_bootstrap: str, make_topic, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    box = sandbox_factory()
    seed_students(box, STUDENTS)
    records = [xp_record(s, 0, xp=2.0) for s in STUDENTS]
    topic, dlq = make_topic("term", partitions=1), make_topic("term-dlq")
    box.faults(paths=["/events/1.0"], latency_ms={"fixed": 2000})  # each POST takes 2 s
    grace = {"RELAY_SHUTDOWN_GRACE": "20"}
    with running_relay(tmp_path, kafka_bootstrap, topic, dlq, box.url, **grace) as relay:
        group = relay.env["RELAY_GROUP_ID"]
        produce(kafka_bootstrap, topic, records)
        wait_in_flight(relay, len(records))
        assert committed(kafka_bootstrap, group, topic) in ([-1001], [0])
        assert relay.terminate(60) == 0
    # Drained: every record finished, was acknowledged and committed before the exit.
    assert committed(kafka_bootstrap, group, topic) == [len(records)]
    assert ledger_total(box, STUDENTS) == 2.0 * len(records)
    assert "drained: all acknowledged" in relay.logs()
    assert letters(kafka_bootstrap, dlq) == []


def test_records_unfinished_at_the_end_of_the_grace_are_redelivered(
    kafka_bootstrap: str, make_topic, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    box = sandbox_factory()
    seed_students(box, STUDENTS)
    records = [xp_record(s, 0, xp=3.0) for s in STUDENTS]
    topic, dlq = make_topic("term", partitions=1), make_topic("term-dlq")
    box.faults(paths=["/events/1.0"], latency_ms={"fixed": 30_000})  # never within the grace
    grace = {"RELAY_SHUTDOWN_GRACE": "1"}
    with running_relay(tmp_path, kafka_bootstrap, topic, dlq, box.url, **grace) as relay:
        group = relay.env["RELAY_GROUP_ID"]
        produce(kafka_bootstrap, topic, records)
        wait_in_flight(relay, len(records))
        assert relay.terminate(60) == 0
        assert "drained: some left for redelivery" in relay.logs()
        assert committed(kafka_bootstrap, group, topic) in ([-1001], [0])  # nothing acked
        box.clear_faults()
        relay.start()
        wait_acked(relay, len(records))
        wait_committed(
            relay, kafka_bootstrap, topic, len(records), "the commit after the redelivery"
        )
    assert ledger_total(box, STUDENTS) == 3.0 * len(records)
    assert letters(kafka_bootstrap, dlq) == []
