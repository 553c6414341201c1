"""Ordering and acknowledgement of ``relay run`` (a subprocess) against real Kafka and the sandbox.

- Per-student order: 50 students, 64 records in flight, API latency jitter and 503s (so events
  are retried): every student's events reach the API in the order the student produced them.
- The faust #606 scenario: the first record is slow, the later ones are done; nothing is
  committed past the slow record; the process is SIGKILLed; after the restart the slow record
  is delivered, not lost.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest

from tests.integration.conftest import SandboxFactory
from tests.integration.pipeline_helpers import (
    committed,
    deliver,
    letters,
    produce,
    running_relay,
    seed_students,
    wait_acked,
    wait_committed,
    wait_for,
    xp_record,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


def test_each_students_events_arrive_in_order_with_64_in_flight(
    kafka_bootstrap: str, make_topic, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    students = [f"student-{n:02d}" for n in range(50)]
    per_student = 6
    box = sandbox_factory()
    seed_students(box, students)
    # Round-robin: each student's records are spread through the topic, between the others'.
    records = [xp_record(s, seq) for seq in range(per_student) for s in students]
    topic, dlq = make_topic("order", partitions=3), make_topic("order-dlq")
    box.faults(
        paths=["/events/1.0"],
        latency_ms={"fixed": 0, "jitter": 40},
        error_rates={"503": 0.1},
        seed=11,
    )
    with running_relay(
        tmp_path, kafka_bootstrap, topic, dlq, box.url, RELAY_MAX_IN_FLIGHT="64"
    ) as relay:
        deliver(relay, kafka_bootstrap, topic, records)
        faulted = box.show_faults()["faulted"]
    box.clear_faults()

    arrivals = [e["id"] for e in box.events(type="GradeEvent")]
    bodies = {i: box.event(i)["body"] for i in arrivals}
    times = {i: b["eventTime"] for i, b in bodies.items()}
    students_of = {i: b["object"]["assignee"]["id"] for i, b in bodies.items()}
    seen: dict[str, list[str]] = defaultdict(list)
    for event_id in arrivals:
        seen[students_of[event_id]].append(times[event_id])
    assert len(seen) == len(students)
    for student, event_times in seen.items():
        assert len(event_times) == per_student, student
        assert event_times == sorted(event_times), f"{student}'s events arrived out of order"
    assert faulted > 0, "no request was faulted: nothing was retried"
    produced = [r.student_id for r in records]
    arrived = [students_of[i].rsplit("/", 1)[-1] for i in arrivals]
    assert arrived != produced, "events arrived in production order: nothing ran concurrently"
    assert letters(kafka_bootstrap, dlq) == []


def test_a_slow_first_record_is_not_committed_past_and_survives_a_kill(
    kafka_bootstrap: str, make_topic, sandbox_factory: SandboxFactory, tmp_path: Path
) -> None:
    box = sandbox_factory()
    box.setup_roster("slow-student", "slow-course")
    others = [f"quick-{n}" for n in range(9)]
    seed_students(box, others)
    # The slow record has no subject: the relay asks rostering for its course, which hangs.
    slow = xp_record("slow-student", 0, course="slow-course", subject=None, xp=5.0)
    quick = [xp_record(s, 0) for s in others]
    box.faults(paths=["/rostering/1.0/courses/slow-course"], latency_ms={"fixed": 60_000})
    topic, dlq = make_topic("s606", partitions=1), make_topic("s606-dlq")
    with running_relay(tmp_path, kafka_bootstrap, topic, dlq, box.url) as relay:
        group = relay.env["RELAY_GROUP_ID"]
        produce(kafka_bootstrap, topic, [slow, *quick])
        wait_for(
            lambda: len(box.events(type="GradeEvent")) == len(quick),
            60,
            "the later records delivered",
            relay.check_alive,
        )
        time.sleep(3)  # several commit intervals (1 s): a commit past offset 0 would show
        assert committed(kafka_bootstrap, group, topic) in ([-1001], [0])
        assert relay.metric("pending") == len(quick) + 1  # done, held behind the slow one
        assert relay.metric("in_flight") == 1  # only the slow one still being processed
        relay.kill()
        box.clear_faults()
        relay.start()
        wait_acked(relay, len(quick) + 1)
        wait_committed(
            relay, kafka_bootstrap, topic, len(quick) + 1, "the commit after the slow record"
        )
    box.process()
    ledger = {e["userId"]: e["value"] for e in _ledger(box)}
    assert ledger.get("slow-student") == 5.0, "the slow record was lost"
    assert set(others) <= set(ledger)
    assert letters(kafka_bootstrap, dlq) == []


def _ledger(box: object) -> list[dict[str, object]]:
    with box.api() as http:  # type: ignore[attr-defined]
        entries = []
        for student in ["slow-student", *(f"quick-{n}" for n in range(9))]:
            response = http.get(f"/xp/1.0/users/{student}/entries")
            response.raise_for_status()
            entries.extend(response.json()["entries"])
        return entries
