"""``relay run`` end to end: real Kafka, the real sandbox over HTTP, the relay as a subprocess.

Every record type flows to the sandbox's XP ledger; planted poison lands in the dead-letter topic
with its reason and source coordinates while the good records keep flowing; an API 400 is
dead-lettered with status and body; ``relay dlq inspect`` and ``relay dlq replay`` work on it.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from relay.contract import encode
from relay.kafka.topics import read_topic
from relay.ops.dead_letters import dead_letters
from relay.sandbox.testing import SandboxControl
from relay.tools.demo import roster
from relay.tools.produce import produce_records
from relay.tools.reconcile import reconcile
from relay.tools.traffic import PlannedRecord, TrafficGenerator, TrafficPlan
from tests.integration.pipeline_helpers import ledger_xp
from tests.reliability.harness import RelayProcess, relay_env, wait_for

pytestmark = pytest.mark.integration
KAFKA = lambda bootstrap: {"bootstrap.servers": bootstrap}  # noqa: E731


def seed(control: SandboxControl, plan: TrafficPlan) -> None:
    for collection, record in roster(plan):
        assert control.put(collection, record).status_code in (200, 201)


@pytest.fixture
def relay_for(kafka_bootstrap, make_topic, tmp_path):  # type: ignore[no-untyped-def]
    started: list[RelayProcess] = []

    def start(api_url: str, partitions: int = 3) -> tuple[RelayProcess, str, str]:
        topic, dlq = make_topic("e2e", partitions), make_topic("e2e-dlq")
        env = relay_env(
            bootstrap=kafka_bootstrap,
            topic=topic,
            dlq=dlq,
            group=f"e2e-{uuid.uuid4().hex[:8]}",
            api_url=api_url,
        )
        relay = RelayProcess("relay", env, tmp_path / "relay").start()
        started.append(relay)
        relay.wait_ready()
        return relay, topic, dlq

    yield start
    for relay in started:
        relay.close()


def wait_acked(relay: RelayProcess, count: int) -> None:
    wait_for(
        lambda: (relay.metric("records_acked_total") or 0) >= count,
        120,
        f"{count} records acknowledged",
        relay.check_alive,
    )


def test_every_record_type_and_poison_reconcile(relay_for, sandbox, kafka_bootstrap) -> None:  # type: ignore[no-untyped-def]
    plan = TrafficGenerator(students=6, invalid_ratio=0.08, seed=21).plan(400)
    seed(sandbox, plan)
    relay, topic, dlq = relay_for(sandbox.url)
    produce_records(_producer(kafka_bootstrap), topic, plan.records)
    wait_acked(relay, len(plan.records))
    sandbox.process()

    result = reconcile(
        plan, ledger_xp(sandbox.url, plan.students), dead_letters(KAFKA(kafka_bootstrap), dlq)
    )
    assert result.ok, (result.xp_mismatches, result.missing, result.wrong_reason, result.unexpected)
    assert sum(result.planted.values()) == len(plan.invalid()) > 0
    assert sum(result.expected_xp.values()) > 0
    received = {e["type"] for e in sandbox.events()}
    assert received >= {
        "GradeEvent",
        "AssessmentEvent",
        "AssessmentItemEvent",
        "ViewEvent",
        "SessionEvent",
    }
    assert sandbox.stats()["rejected_at_validation"] == 0

    letter = dead_letters(KAFKA(kafka_bootstrap), dlq)[0]
    source = {
        k: letter.headers[k].decode()
        for k in (
            "relay.source.topic",
            "relay.source.partition",
            "relay.source.offset",
            "relay.version",
            "relay.failure.first",
        )
    }
    assert source["relay.source.topic"] == topic and int(source["relay.source.offset"]) >= 0


def test_api_rejection_is_dead_lettered_and_replayable(  # type: ignore[no-untyped-def]
    relay_for, sandbox_factory, kafka_bootstrap, tmp_path
) -> None:
    # The sandbox refuses Science (400 invalid_event); the relay allows it: an API rejection.
    box = sandbox_factory(subjects=("Math", "Reading", "None"))
    box.setup_roster("student-1", "course-1")
    relay, topic, dlq = relay_for(box.url, partitions=1)
    refused = _xp_record("Science", 5.0)
    accepted = _xp_record("Math", 7.0)
    produce_records(_producer(kafka_bootstrap), topic, [refused, accepted])
    wait_acked(relay, 2)
    box.process()

    [letter] = dead_letters(KAFKA(kafka_bootstrap), dlq)
    assert (letter.stage, letter.reason) == ("deliver", "api-rejected")
    assert letter.headers["relay.http.status"] == b"400"
    assert b"extensions.subject" in letter.headers["relay.http.body"]
    assert letter.value == refused.value and letter.key == refused.key
    assert ledger_xp(box.url, ["student-1"]) == {"student-1": 7.0}  # the next record kept flowing

    env = relay.env
    inspect = _relay_cli(["dlq", "inspect", "--show", "1"], env)
    assert "api-rejected" in inspect and topic in inspect
    assert "1 dead letters" in inspect

    dry = _relay_cli(["dlq", "replay", "--reason", "api-rejected", "--dry-run"], env)
    assert "would replay" in dry and len(read_topic(KAFKA(kafka_bootstrap), topic)) == 2

    _relay_cli(["dlq", "replay", "--reason", "api-rejected"], env)
    source = read_topic(KAFKA(kafka_bootstrap), topic)
    assert len(source) == 3 and source[-1].value() == refused.value
    assert ("relay.replays", b"1") in (source[-1].headers() or [])
    wait_acked(relay, 3)  # refused again: back in the DLQ, carrying its replay count
    wait_for(lambda: len(dead_letters(KAFKA(kafka_bootstrap), dlq)) == 2, 30, "second letter")
    assert dead_letters(KAFKA(kafka_bootstrap), dlq)[-1].headers["relay.replays"] == b"1"


def _xp_record(subject: str, amount: float) -> PlannedRecord:
    event_id = str(uuid.uuid4())
    value = encode(
        "XpEarned",
        {
            "event_id": event_id,
            "occurred_at": datetime.now(UTC),
            "student_id": "student-1",
            "activity": {"id": f"lessons/{subject.lower()}", "name": f"{subject} lesson"},
            "xp": amount,
            "course_id": "course-1",
            "subject": subject,
        },
    )
    return PlannedRecord(b"student-1", value, event_id, "XpEarned", "student-1", xp=amount)


def _producer(bootstrap: str):  # type: ignore[no-untyped-def]
    from confluent_kafka import Producer

    return Producer({"bootstrap.servers": bootstrap, "acks": "all"})


def _relay_cli(args: list[str], env: dict[str, str]) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "relay.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path.cwd(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout
