"""Helpers of the ``relay run`` integration tests: records, a relay subprocess, what Kafka, the
relay's /metrics and the sandbox's ledger say. The relay process itself is the reliability
suite's harness.

    with running_relay(tmp_path, kafka_bootstrap, topic, dlq, box.url, RELAY_X="1") as relay:
        deliver(relay, kafka_bootstrap, topic, records)   # produced, then all acknowledged
        requests = sample(relay, "http_requests", endpoint="events")
    assert ledger_total(box, STUDENTS) == 1.5 * len(records)
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from relay.contract import encode
from relay.ops.dead_letters import DeadLetterView, dead_letters
from relay.sandbox.testing import SandboxControl
from relay.timeback.client import TimeBackClient
from relay.timeback.client_config import ClientConfig
from relay.tools.produce import produce_records
from relay.tools.reconcile import materialized_xp
from relay.tools.traffic import PlannedRecord
from tests.reliability.harness import RelayProcess, relay_env, wait_for

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)

__all__ = ["RelayProcess", "wait_for"]


def xp_record(
    student: str,
    seq: int,
    *,
    course: str | None = "course-1",
    subject: str | None = "Math",
    xp: float = 1.0,
) -> PlannedRecord:
    """An XpEarned of ``student``; ``seq`` orders one student's records (occurred_at + seq s)."""
    event_id = str(uuid.uuid4())
    value = {
        "event_id": event_id,
        "occurred_at": BASE + timedelta(seconds=seq),
        "student_id": student,
        "activity": {"id": f"lessons/{student}/{seq}", "name": f"Lesson {seq}"},
        "xp": xp,
        "course_id": course,
        "subject": subject,
    }
    return PlannedRecord(
        student.encode(), encode("XpEarned", value), event_id, "XpEarned", student, xp=xp
    )


def produce(bootstrap: str, topic: str, records: Iterable[PlannedRecord], rate: float = 0) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    produce_records(producer, topic, records, rate=rate)


def start_relay(
    workdir: Path, bootstrap: str, topic: str, dlq: str, api_url: str, **env: str
) -> RelayProcess:
    """``relay run`` on ``topic`` as a subprocess, assigned its partitions."""
    relay = RelayProcess(
        "relay",
        relay_env(
            bootstrap=bootstrap,
            topic=topic,
            dlq=dlq,
            group=f"pipeline-{uuid.uuid4().hex[:8]}",
            api_url=api_url,
            **env,
        ),
        workdir,
    ).start()
    relay.wait_assigned()
    return relay


@contextmanager
def running_relay(
    workdir: Path, bootstrap: str, topic: str, dlq: str, api_url: str, **env: str
) -> Iterator[RelayProcess]:
    """``start_relay`` for the length of a ``with`` block: the process is killed at its end
    (after a SIGTERM the test asked for, ``close`` only releases the HTTP client)."""
    relay = start_relay(workdir, bootstrap, topic, dlq, api_url, **env)
    try:
        yield relay
    finally:
        relay.close()


def deliver(relay: RelayProcess, bootstrap: str, topic: str, records: list[PlannedRecord]) -> None:
    """Produce ``records`` and wait until the relay has acknowledged that many."""
    produce(bootstrap, topic, records)
    wait_acked(relay, len(records))


def wait_acked(relay: RelayProcess, count: int, timeout: float = 120) -> None:
    wait_for(
        lambda: (relay.metric("records_acked") or 0) >= count,
        timeout,
        f"{count} records acknowledged",
        relay.check_alive,
    )


def wait_in_flight(relay: RelayProcess, count: int, what: str | None = None) -> None:
    """Until ``count`` records are in flight (taken, not yet acknowledged)."""
    wait_for(
        lambda: (relay.metric("in_flight") or 0) >= count,
        60,
        what or f"{count} records in flight",
        relay.check_alive,
    )


def wait_registry_retries(relay: RelayProcess, timeout: float, what: str) -> None:
    """Until the relay has retried the Schema Registry three times (it pauses, it does not
    dead-letter, while the registry refuses or is down)."""
    wait_for(
        lambda: sample(relay, "retries", endpoint="registry") >= 3,
        timeout,
        what,
        relay.check_alive,
    )


def committed(bootstrap: str, group: str, topic: str, partitions: int = 1) -> list[int]:
    """The group's committed offsets on ``topic`` (-1001: nothing committed)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        return [tp.offset for tp in consumer.committed(tps, timeout=10)]
    finally:
        consumer.close()


def wait_committed(relay: RelayProcess, bootstrap: str, topic: str, count: int, what: str) -> None:
    """Until the relay's group has committed offset ``count`` on ``topic`` (one partition)."""
    group = relay.env["RELAY_GROUP_ID"]
    wait_for(lambda: committed(bootstrap, group, topic) == [count], 30, what, relay.check_alive)


def letters(bootstrap: str, dlq: str) -> list[DeadLetterView]:
    return dead_letters({"bootstrap.servers": bootstrap}, dlq)


def samples(relay: RelayProcess, name: str) -> dict[frozenset[tuple[str, str]], float]:
    """Every sample of ``timeback_relay_<name>`` (counters: ``_total``) by its label set."""
    text = relay.metrics_text() or ""
    wanted = {f"timeback_relay_{name}", f"timeback_relay_{name}_total"}
    return {
        frozenset(s.labels.items()): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in wanted
    }


def sample(relay: RelayProcess, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for k, v in samples(relay, name).items() if want <= k)


def ledger_total(box: SandboxControl, students: Iterable[str]) -> float:
    """The XP in the sandbox's ledger of ``students``, once every accepted event is processed."""
    box.process()
    with box.api() as http:
        return sum(
            float(e["value"])
            for s in students
            for e in http.get(f"/xp/1.0/users/{s}/entries").json()["entries"]
        )


def ledger_xp(url: str, students: Sequence[str]) -> dict[str, float]:
    """Each student's XP as the sandbox at ``url`` materialises it (read with the relay's own
    client, as ``relay reconcile`` does)."""

    async def fetch() -> dict[str, float]:
        config = ClientConfig(url, "sandbox-client", SecretStr("sandbox-secret"))
        async with TimeBackClient(config) as client:
            return await materialized_xp(client, list(students))

    return asyncio.run(fetch())


def seed_students(control: object, students: Iterable[str], course: str = "course-1") -> None:
    setup: Callable[..., object] = control.setup_roster  # type: ignore[attr-defined]
    for student in students:
        setup(student, course)
