"""``relay run`` with RELAY_EVENTS_PER_REQUEST=20: real Kafka, the real sandbox over HTTP.

Events of different records share Caliper envelopes. The sandbox refuses an envelope whole when
one of its events breaks its rules (a subject it does not allow, which the relay does allow), so
the relay splits it until the bad event is alone: every good event arrives exactly once, only
the planted records are dead-lettered, each with its own single-event 400, and the relay made
fewer requests than it delivered events. Against a sandbox that takes one event per request,
every envelope is refused and split down to single events: everything still arrives. Under 503s
and jitter, envelopes are retried whole and each student's events still arrive in order. A SIGTERM
with envelopes in flight past the grace exits cleanly, and the records are redelivered.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from relay.tools.demo import roster
from relay.tools.reconcile import reconcile
from relay.tools.traffic import PlannedRecord, TrafficGenerator
from tests.integration.conftest import SandboxFactory, SandboxHandle
from tests.integration.pipeline_helpers import (
    committed,
    deliver,
    ledger_xp,
    letters,
    produce,
    running_relay,
    sample,
    seed_students,
    wait_acked,
    wait_committed,
    wait_in_flight,
    xp_record,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

STUDENTS = [f"student-{n:02d}" for n in range(40)]
ALLOWED = ("Math", "Reading", "None")  # the sandbox's subjects: no Science


def backlog(per_student: int, planted_every: int = 0) -> tuple[list[PlannedRecord], set[bytes]]:
    """Round-robin records of every student; each ``planted_every``-th is a Science one
    (the values of the planted ones are returned)."""
    records: list[PlannedRecord] = []
    planted: set[bytes] = set()
    for seq in range(per_student):
        for student in STUDENTS:
            bad = planted_every and len(records) % planted_every == planted_every - 1
            records.append(xp_record(student, seq, subject="Science" if bad else "Math"))
            if bad:
                planted.add(records[-1].value)
    return records, planted


def taken(box: SandboxHandle) -> Counter[str]:
    """Event ids the sandbox accepted, with how often."""
    return Counter(e["id"] for e in box.events() if e["fate"] != "rejected_at_validation")


def refused(box: SandboxHandle) -> set[str]:
    return {e["id"] for e in box.events(fate="rejected_at_validation")}


def test_envelopes_deliver_every_good_event_once_and_dead_letter_only_the_bad(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
) -> None:
    box = sandbox_factory(subjects=ALLOWED, max_events_per_request=20)
    seed_students(box, STUDENTS)
    records, planted = backlog(per_student=5, planted_every=37)
    topic, dlq = make_topic("envelopes", partitions=3), make_topic("envelopes-dlq")
    with running_relay(
        tmp_path, kafka_bootstrap, topic, dlq, box.url,
        RELAY_EVENTS_PER_REQUEST="20", RELAY_MAX_IN_FLIGHT="4", RELAY_BATCH_LINGER="0.05",
    ) as relay:  # fmt: skip
        deliver(relay, kafka_bootstrap, topic, records)
        requests = sample(relay, "http_requests", endpoint="events")
        delivered = sample(relay, "events_sent", outcome="delivered")

    good = len(records) - len(planted)  # an XpEarned is one GradeEvent
    accepted = taken(box)
    assert set(accepted.values()) == {1} and len(accepted) == good  # each good event once
    assert delivered == good
    assert requests < good, f"{requests} requests for {good} events: nothing was batched"

    dead = letters(kafka_bootstrap, dlq)
    assert sorted(d.value for d in dead) == sorted(planted)
    dead_events = {d.headers["relay.event_ids"].decode() for d in dead}
    assert dead_events <= refused(box) and not dead_events & set(accepted)
    for letter in dead:
        assert (letter.stage, letter.reason) == ("deliver", "api-rejected")
        assert letter.headers["relay.http.status"] == b"400"
        body = letter.headers["relay.http.body"]
        assert b"extensions.subject" in body and b"data[" not in body  # its own request's


def test_envelopes_to_an_api_taking_one_event_per_request_are_split_to_singles(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
) -> None:
    box = sandbox_factory()  # max_events_per_request=1: every envelope is a 400
    seed_students(box, STUDENTS)
    records, _ = backlog(per_student=2)
    topic, dlq = make_topic("singles", partitions=3), make_topic("singles-dlq")
    with running_relay(
        tmp_path, kafka_bootstrap, topic, dlq, box.url,
        RELAY_EVENTS_PER_REQUEST="20", RELAY_MAX_IN_FLIGHT="4",
    ) as relay:  # fmt: skip
        deliver(relay, kafka_bootstrap, topic, records)
        requests = sample(relay, "http_requests", endpoint="events")

    accepted = taken(box)
    assert set(accepted.values()) == {1} and len(accepted) == len(records)
    assert letters(kafka_bootstrap, dlq) == []
    assert requests > len(records)  # refused envelopes, then every event alone


def test_every_record_type_reconciles_through_envelopes(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
) -> None:
    # Records of several events (assessments, answers) and the relay's own poison, in envelopes.
    box = sandbox_factory(max_events_per_request=20)
    plan = TrafficGenerator(students=20, invalid_ratio=0.08, seed=21).plan(400)
    for collection, entity in roster(plan):
        assert box.put(collection, entity).status_code in (200, 201)
    topic, dlq = make_topic("envelope-types", partitions=3), make_topic("envelope-types-dlq")
    with running_relay(
        tmp_path, kafka_bootstrap, topic, dlq, box.url,
        RELAY_EVENTS_PER_REQUEST="20", RELAY_BATCH_LINGER="0.05",
    ) as relay:  # fmt: skip
        deliver(relay, kafka_bootstrap, topic, plan.records)
        requests = sample(relay, "http_requests", endpoint="events")
    box.process()

    result = reconcile(plan, ledger_xp(box.url, plan.students), letters(kafka_bootstrap, dlq))
    assert result.ok, (result.xp_mismatches, result.missing, result.wrong_reason, result.unexpected)
    assert box.stats()["rejected_at_validation"] == 0  # every envelope was taken whole
    accepted = taken(box)
    assert set(accepted.values()) == {1} and requests < len(accepted)


def test_envelopes_in_flight_at_shutdown_are_cancelled_and_redelivered(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
) -> None:
    box = sandbox_factory(max_events_per_request=20)
    students = STUDENTS[:12]
    seed_students(box, students)
    records = [xp_record(s, 0, xp=3.0) for s in students]
    topic, dlq = make_topic("envelope-term", partitions=1), make_topic("envelope-term-dlq")
    box.faults(paths=["/events/1.0"], latency_ms={"fixed": 30_000})  # never within the grace
    with running_relay(
        tmp_path, kafka_bootstrap, topic, dlq, box.url,
        RELAY_EVENTS_PER_REQUEST="20", RELAY_SHUTDOWN_GRACE="1",
    ) as relay:  # fmt: skip
        group = relay.env["RELAY_GROUP_ID"]
        produce(kafka_bootstrap, topic, records)
        wait_in_flight(relay, len(records), "every record in flight")
        assert relay.terminate(60) == 0  # the batcher's requests were cancelled, not waited for
        assert "drained: some left for redelivery" in relay.logs()
        assert committed(kafka_bootstrap, group, topic) in ([-1001], [0])  # nothing acked
        box.clear_faults()
        relay.start()
        wait_acked(relay, len(records))
        wait_committed(
            relay, kafka_bootstrap, topic, len(records), "the commit after the redelivery"
        )
    box.process()
    assert sum(ledger_xp(box.url, students).values()) == 3.0 * len(records)
    assert letters(kafka_bootstrap, dlq) == []


def test_envelopes_retried_through_503s_keep_each_students_order(
    kafka_bootstrap: str,
    make_topic: Callable[..., str],
    sandbox_factory: SandboxFactory,
    tmp_path: Path,
) -> None:
    box = sandbox_factory(max_events_per_request=20)
    seed_students(box, STUDENTS)
    records, _ = backlog(per_student=4)
    topic, dlq = make_topic("envelope-order", partitions=3), make_topic("envelope-order-dlq")
    box.faults(
        paths=["/events/1.0"],
        latency_ms={"fixed": 0, "jitter": 40},
        error_rates={"503": 0.2},
        seed=5,
    )
    with running_relay(
        tmp_path, kafka_bootstrap, topic, dlq, box.url,
        RELAY_EVENTS_PER_REQUEST="20", RELAY_MAX_IN_FLIGHT="4",
    ) as relay:  # fmt: skip
        deliver(relay, kafka_bootstrap, topic, records)
        retries = sample(relay, "retries", endpoint="events", cause="503")
        requests = sample(relay, "http_requests", endpoint="events")
    box.clear_faults()

    accepted = taken(box)
    assert set(accepted.values()) == {1} and len(accepted) == len(records)
    assert retries > 0 and requests < len(records)
    times: dict[str, list[str]] = defaultdict(list)
    for row in box.events(type="GradeEvent"):
        body = box.event(row["id"])["body"]
        times[body["object"]["assignee"]["id"]].append(body["eventTime"])
    assert len(times) == len(STUDENTS)
    for student, arrived in times.items():
        assert arrived == sorted(arrived), f"{student}'s events arrived out of order"
    assert letters(kafka_bootstrap, dlq) == []
