"""Confluent-framed records through ``relay run`` and a Schema Registry over HTTP.

Producers register with ``relay.contract.encode(..., framing="confluent")`` (the real
confluent-kafka client), the relay fetches each writer schema by id from the registry: two schema
versions decode and deliver, an unknown id is dead-lettered with its reason, and a registry that is
down pauses the relay (nothing dead-lettered, nothing delivered) until it is back. The registry is
a stand-in (tests/integration/registry_standin.py says why no real one runs here).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient

from relay.contract import encode
from relay.contract.catalogue import Catalogue, default_schema_dir
from relay.contract.wire import frame_confluent
from relay.tools.traffic import PlannedRecord
from tests.integration.conftest import SandboxFactory, SandboxHandle
from tests.integration.pipeline_helpers import (
    BASE,
    RelayProcess,
    letters,
    produce,
    sample,
    seed_students,
    start_relay,
    wait_acked,
    wait_for,
)
from tests.integration.registry_standin import RegistryStandIn

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]
STUDENTS = [f"student-{n:02d}" for n in range(4)]
SUBJECT = "timeback.activity.XpEarned"
XP = 1.5


@pytest.fixture
def registry() -> Iterator[RegistryStandIn]:
    standin = RegistryStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def catalogue_v2(tmp_path: Path) -> Catalogue:
    """The repository's schemas plus an XpEarned v2 that adds a defaulted field (the evolution
    BACKWARD compatibility allows: a v2 reader fills it in for v1 records)."""
    v1 = json.loads((default_schema_dir() / "XpEarned.v1.avsc").read_text())
    v1["fields"].append({"name": "streak", "type": "int", "default": 0, "doc": "Days in a row."})
    folder = tmp_path / "schemas-v2"
    folder.mkdir()
    (folder / "XpEarned.v2.avsc").write_text(json.dumps(v1))
    return Catalogue.load(default_schema_dir(), folder)


def _value(student: str, seq: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "occurred_at": int(BASE.timestamp() * 1000) + seq * 1000,
        "student_id": student,
        "activity": {"id": f"lessons/{student}/{seq}", "name": f"Lesson {seq}"},
        "xp": XP,
        "course_id": "course-1",
        "subject": "Math",
        **extra,
    }


def _confluent(student: str, seq: int, client: Any, **options: Any) -> PlannedRecord:
    value = _value(student, seq, **options.pop("extra", {}))
    framed = encode("XpEarned", value, framing="confluent", registry=client, **options)
    return PlannedRecord(student.encode(), framed, value["event_id"], "XpEarned", student, xp=XP)


def _ledger_total(box: SandboxHandle) -> float:
    box.process()
    with box.api() as http:
        return sum(
            float(e["value"])
            for s in STUDENTS
            for e in http.get(f"/xp/1.0/users/{s}/entries").json()["entries"]
        )


def _relay(box: SandboxHandle, registry: RegistryStandIn, kafka_bootstrap: str, make_topic,
           tmp_path: Path) -> tuple[RelayProcess, str, str]:  # type: ignore[no-untyped-def]  # fmt: skip
    seed_students(box, STUDENTS)
    topic, dlq = make_topic("registry", partitions=2), make_topic("registry-dlq")
    relay = start_relay(
        tmp_path, kafka_bootstrap, topic, dlq, box.url, RELAY_SCHEMA_REGISTRY_URL=registry.url
    )
    return relay, topic, dlq


def test_two_schema_versions_decode_through_the_registry(
    kafka_bootstrap: str,
    make_topic,  # type: ignore[no-untyped-def]
    sandbox_factory: SandboxFactory,
    registry: RegistryStandIn,
    catalogue_v2: Catalogue,
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    client = SchemaRegistryClient({"url": registry.url})
    old = [_confluent(s, seq, client) for s in STUDENTS for seq in range(3)]
    new = [
        _confluent(s, seq, client, catalogue=catalogue_v2, extra={"streak": seq})
        for s in STUDENTS
        for seq in range(3, 6)
    ]
    ids = registry.versions(SUBJECT)
    assert len(ids) == 2, f"v1 and v2 registered under {SUBJECT}: {ids}"

    relay, topic, dlq = _relay(box, registry, kafka_bootstrap, make_topic, tmp_path)
    try:
        produce(kafka_bootstrap, topic, old + new)
        wait_acked(relay, len(old) + len(new))
    finally:
        relay.close()
    assert sorted(set(registry.fetched)) == sorted(ids), "the relay asked the registry by id"
    assert letters(kafka_bootstrap, dlq) == []
    assert _ledger_total(box) == XP * (len(old) + len(new))


def test_an_unknown_schema_id_is_dead_lettered_with_its_reason(
    kafka_bootstrap: str,
    make_topic,  # type: ignore[no-untyped-def]
    sandbox_factory: SandboxFactory,
    registry: RegistryStandIn,
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    client = SchemaRegistryClient({"url": registry.url})
    good = [_confluent(s, 0, client) for s in STUDENTS]
    body = good[0].value[5:]  # a valid Avro body under a schema id the registry never issued
    unknown = PlannedRecord(b"student-00", frame_confluent(4242, body), "-", "XpEarned", "-")

    relay, topic, dlq = _relay(box, registry, kafka_bootstrap, make_topic, tmp_path)
    try:
        produce(kafka_bootstrap, topic, [unknown, *good])
        wait_acked(relay, len(good) + 1)
    finally:
        relay.close()
    dead = letters(kafka_bootstrap, dlq)
    assert [(x.stage, x.reason) for x in dead] == [("decode", "unknown-schema-id")]
    assert b"4242" in dead[0].headers["relay.detail"] and dead[0].value == unknown.value
    assert 4242 in registry.fetched
    assert _ledger_total(box) == XP * len(good)


def test_registry_down_pauses_the_relay_and_it_resumes_when_back(
    kafka_bootstrap: str,
    make_topic,  # type: ignore[no-untyped-def]
    sandbox_factory: SandboxFactory,
    registry: RegistryStandIn,
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    client = SchemaRegistryClient({"url": registry.url})
    records = [_confluent(s, seq, client) for s in STUDENTS for seq in range(5)]
    registry.stop()  # the relay starts with a cold cache and no registry

    relay, topic, dlq = _relay(box, registry, kafka_bootstrap, make_topic, tmp_path)
    try:
        produce(kafka_bootstrap, topic, records)
        wait_for(
            lambda: sample(relay, "retries", endpoint="registry") >= 3,
            60,
            "registry retries while it is down",
            relay.check_alive,
        )
        time.sleep(2)  # a few more backoff rounds: still nothing may move
        paused = (sample(relay, "records_acked"), letters(kafka_bootstrap, dlq), _ledger_total(box))
        registry.start()
        wait_acked(relay, len(records))
    finally:
        relay.close()
    assert paused == (0, [], 0), "while the registry is down: nothing acked, dead-lettered, sent"
    assert letters(kafka_bootstrap, dlq) == []
    assert _ledger_total(box) == XP * len(records)
