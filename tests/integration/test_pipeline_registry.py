"""Confluent-framed records through ``relay run`` and the real Schema Registry (Apicurio Registry
2.3.1 behind the Confluent API, deploy/local/registry; real broker, real sandbox).

Producers register with ``relay.contract.encode(..., framing="confluent")`` under the topic and the
record naming strategies; the relay fetches each writer schema by id. Schema evolution under
BACKWARD: v1 and a v2 with a defaulted field are delivered side by side, an incompatible v3 is
refused by the registry at registration (HTTP 409, the producer's error says why). An id the
registry never issued is dead-lettered (decode/unknown-schema-id). A registry that is down pauses
the relay until it is back; one restarted empty leaves the relay decoding with the schemas it
already fetched (Confluent ids are immutable), while a relay with a cold cache dead-letters those
records, their ids being gone. The serializer's call to the ``associations`` endpoint this registry
lacks (404) costs one request, no error and no log line.
"""

from __future__ import annotations

import json
import re
import uuid
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.serialization import MessageField, SerializationContext

from relay.contract import encode
from relay.contract.catalogue import Catalogue, default_catalogue, default_schema_dir
from relay.contract.wire import frame_confluent
from relay.tools.traffic import PlannedRecord
from tests.conftest import TopicFactory
from tests.integration.conftest import SandboxFactory, SandboxHandle
from tests.integration.pipeline_helpers import (
    BASE,
    RelayProcess,
    deliver,
    ledger_total,
    letters,
    produce,
    running_relay,
    sample,
    seed_students,
    wait_acked,
    wait_registry_retries,
)
from tests.registry import Registry, RegistryFactory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
STUDENTS = [f"student-{n:02d}" for n in range(4)]
XP_NAME = "timeback.activity.XpEarned"
XP = 1.5


def _xp_schema(extra_fields: list[dict[str, Any]]) -> dict[str, Any]:
    schema = json.loads((default_schema_dir() / "XpEarned.v1.avsc").read_text())
    schema["fields"].extend(extra_fields)
    return dict(schema)


@pytest.fixture
def catalogue_v2(tmp_path: Path) -> Catalogue:
    """The repository's schemas plus an XpEarned v2 that adds a defaulted field (the evolution
    BACKWARD compatibility allows: a v2 reader fills it in for v1 records)."""
    folder = tmp_path / "schemas-v2"
    folder.mkdir()
    streak = {"name": "streak", "type": "int", "default": 0, "doc": "Days in a row."}
    (folder / "XpEarned.v2.avsc").write_text(json.dumps(_xp_schema([streak])))
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


def _batch(client: SchemaRegistryClient, seqs: range, **options: Any) -> list[PlannedRecord]:
    return [_confluent(s, seq, client, **dict(options)) for s in STUDENTS for seq in seqs]


def _topics(make_topic: TopicFactory, box: SandboxHandle) -> tuple[str, str]:
    seed_students(box, STUDENTS)
    return make_topic("registry", partitions=2), make_topic("registry-dlq")


def _relay(tmp_path: Path, kafka_bootstrap: str, topic: str, dlq: str, box: SandboxHandle,
           url: str, **env: str) -> AbstractContextManager[RelayProcess]:  # fmt: skip
    return running_relay(tmp_path, kafka_bootstrap, topic, dlq, box.url,
                         RELAY_SCHEMA_REGISTRY_URL=url, **env)  # fmt: skip


@pytest.mark.parametrize("strategy", ["topic", "record"])
def test_naming_strategies_register_and_the_relay_decodes_by_id(
    strategy: str,
    kafka_bootstrap: str,
    make_topic: TopicFactory,
    sandbox_factory: SandboxFactory,
    schema_registry: Registry,
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    topic, dlq = _topics(make_topic, box)
    subject = f"{topic}-value" if strategy == "topic" else XP_NAME
    client = schema_registry.client()
    records = _batch(client, range(3), subject=subject)
    (schema_id,) = {int.from_bytes(r.value[1:5], "big") for r in records}
    assert schema_id in schema_registry.versions(subject), f"registered under {subject}"

    with _relay(tmp_path, kafka_bootstrap, topic, dlq, box, schema_registry.url) as relay:
        deliver(relay, kafka_bootstrap, topic, records)
    assert schema_registry.requests_for(f"/schemas/ids/{schema_id}") >= 1, "fetched by id"
    assert letters(kafka_bootstrap, dlq) == []
    assert ledger_total(box, STUDENTS) == XP * len(records)


def test_backward_evolution_delivers_v1_and_v2_and_the_registry_refuses_an_incompatible_v3(
    kafka_bootstrap: str,
    make_topic: TopicFactory,
    sandbox_factory: SandboxFactory,
    schema_registry: Registry,
    catalogue_v2: Catalogue,
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    topic, dlq = _topics(make_topic, box)
    subject = f"{topic}-value"
    schema_registry.compatibility(subject, "BACKWARD")
    client = schema_registry.client()
    old = _batch(client, range(3), subject=subject)
    new = _batch(client, range(3, 6), subject=subject, catalogue=catalogue_v2,
                 extra={"streak": 4})  # fmt: skip
    ids = schema_registry.versions(subject)
    assert len(ids) == 2, f"v1 and v2 registered under {subject}: {ids}"

    # v3 makes a field required that v1 records lack: a v3 reader could not read them.
    mandatory = {"name": "badge", "type": "string", "doc": "No default: breaks BACKWARD."}
    v3 = Schema(json.dumps(_xp_schema([mandatory])), "AVRO")
    with pytest.raises(SchemaRegistryError) as refused:
        client.register_schema(subject, v3)
    assert refused.value.http_status_code == 409, refused.value
    assert "compatib" in str(refused.value).lower(), f"the error says why: {refused.value}"
    assert schema_registry.versions(subject) == ids, "v3 was not registered"

    with _relay(tmp_path, kafka_bootstrap, topic, dlq, box, schema_registry.url) as relay:
        produce(kafka_bootstrap, topic, old + new)
        wait_acked(relay, len(old) + len(new))
    for schema_id in ids:
        assert schema_registry.requests_for(f"/schemas/ids/{schema_id}") >= 1
    assert letters(kafka_bootstrap, dlq) == []
    assert ledger_total(box, STUDENTS) == XP * (len(old) + len(new))


def test_an_unknown_schema_id_is_dead_lettered_with_its_reason(
    kafka_bootstrap: str,
    make_topic: TopicFactory,
    sandbox_factory: SandboxFactory,
    schema_registry: Registry,
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    topic, dlq = _topics(make_topic, box)
    good = _batch(schema_registry.client(), range(1))
    body = good[0].value[5:]  # a valid Avro body under a schema id the registry never issued
    unknown = PlannedRecord(b"student-00", frame_confluent(424242, body), "-", "XpEarned", "-")

    with _relay(tmp_path, kafka_bootstrap, topic, dlq, box, schema_registry.url) as relay:
        produce(kafka_bootstrap, topic, [unknown, *good])
        wait_acked(relay, len(good) + 1)
    dead = letters(kafka_bootstrap, dlq)
    assert [(x.stage, x.reason) for x in dead] == [("decode", "unknown-schema-id")]
    assert b"424242" in dead[0].headers["relay.detail"] and dead[0].value == unknown.value
    assert schema_registry.requests_for("/schemas/ids/424242") == 1, "asked once, answered 404"
    assert ledger_total(box, STUDENTS) == XP * len(good)


def _paused(relay: RelayProcess, bootstrap: str, dlq: str, box: SandboxHandle) -> tuple:  # type: ignore[type-arg]
    """Once the relay has retried the registry a few times: what it acked, dead-lettered, sent."""
    wait_registry_retries(relay, 90, "registry retries while it is down")
    return sample(relay, "records_acked"), letters(bootstrap, dlq), ledger_total(box, STUDENTS)


def test_registry_down_pauses_the_relay_and_it_resumes_when_back(
    kafka_bootstrap: str,
    make_topic: TopicFactory,
    sandbox_factory: SandboxFactory,
    registry_factory: RegistryFactory,
    tmp_path: Path,
) -> None:
    box = sandbox_factory()
    topic, dlq = _topics(make_topic, box)
    registry = registry_factory()
    records = _batch(registry.client(), range(5))
    registry.stop()  # the process is gone: connections refused; the relay's cache is cold

    with _relay(tmp_path, kafka_bootstrap, topic, dlq, box, registry.url) as relay:
        produce(kafka_bootstrap, topic, records)
        paused = _paused(relay, kafka_bootstrap, dlq, box)
        registry.start()  # its file storage kept the schemas: the same ids
        wait_acked(relay, len(records))
    assert paused == (0, [], 0), "while the registry is down: nothing acked, dead-lettered, sent"
    assert letters(kafka_bootstrap, dlq) == []
    assert ledger_total(box, STUDENTS) == XP * len(records)


def test_a_registry_restarted_empty(
    kafka_bootstrap: str,
    make_topic: TopicFactory,
    sandbox_factory: SandboxFactory,
    registry_factory: RegistryFactory,
    tmp_path: Path,
) -> None:
    """The relay keeps the schemas it fetched: records under ids the registry has forgotten are
    still delivered by a relay that saw those ids, and dead-lettered with unknown-schema-id by a
    relay that never did (nothing is silently lost either way)."""
    box = sandbox_factory()
    topic, dlq = _topics(make_topic, box)
    registry = registry_factory()
    producer_client = registry.client()  # it caches ids too, as every Confluent client does
    before = _batch(producer_client, range(2))
    with _relay(tmp_path / "warm", kafka_bootstrap, topic, dlq, box, registry.url) as relay:
        produce(kafka_bootstrap, topic, before)
        wait_acked(relay, len(before))
        registry.reset()
        registry.start()  # empty: no subject, no schema id
        assert registry.versions(XP_NAME) == []
        after = _batch(producer_client, range(2, 4))  # the producer's cached id, now unknown
        produce(kafka_bootstrap, topic, after)
        wait_acked(relay, len(before) + len(after))
    assert letters(kafka_bootstrap, dlq) == [], "the warm relay decoded with its cached schema"
    assert ledger_total(box, STUDENTS) == XP * (len(before) + len(after))

    cold_dlq = make_topic("registry-cold-dlq")
    with _relay(tmp_path / "cold", kafka_bootstrap, topic, cold_dlq, box, registry.url) as cold:
        wait_acked(cold, len(before) + len(after))  # the same records, from the start
    dead = letters(kafka_bootstrap, cold_dlq)
    assert {(x.stage, x.reason) for x in dead} == {("decode", "unknown-schema-id")}
    assert len(dead) == len(before) + len(after), "every record whose id is gone, none lost"
    assert b"is not in the Schema Registry" in dead[0].headers["relay.detail"]


def test_the_serializers_associations_lookup_is_one_quiet_404(
    kafka_bootstrap: str,
    make_topic: TopicFactory,
    sandbox_factory: SandboxFactory,
    schema_registry: Registry,
    tmp_path: Path,
) -> None:
    """confluent-kafka's AvroSerializer (default subject naming) first asks
    /associations/resources/-/{topic}, a newer Confluent endpoint Apicurio 2.3.1 answers 404: it
    falls back to the topic strategy after one request, and the relay never asks it at all."""
    box = sandbox_factory()
    topic, dlq = _topics(make_topic, box)
    text = default_catalogue().entry(XP_NAME).text
    serializer = AvroSerializer(schema_registry.client(), text)
    context = SerializationContext(topic, MessageField.VALUE)
    records: list[PlannedRecord] = []
    for student in STUDENTS:
        for seq in range(3):
            value = _value(student, seq)
            framed = serializer(value, context)
            assert framed is not None
            records.append(PlannedRecord(student.encode(), framed, value["event_id"],
                                         "XpEarned", student, xp=XP))  # fmt: skip
    associations = schema_registry.requests_for(f"/associations/resources/-/{topic}")
    assert associations == 1, f"{associations} associations requests for {len(records)} records"
    assert schema_registry.versions(f"{topic}-value"), "fell back to the topic strategy"

    with _relay(tmp_path, kafka_bootstrap, topic, dlq, box, schema_registry.url) as relay:
        deliver(relay, kafka_bootstrap, topic, records)
        retries = sample(relay, "retries", endpoint="registry")
    assert letters(kafka_bootstrap, dlq) == []
    assert ledger_total(box, STUDENTS) == XP * len(records)
    assert retries == 0
    logs = relay.logs().lower()
    # 404 as a word: faust's start-up lines print object addresses (0x7fd0404f1990 failed this once)
    assert "associations" not in logs and not re.search(r"\b404\b", logs), "no noise in the logs"
