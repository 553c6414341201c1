"""Every record type round-trips through encode -> decode in both framings; older writers decode
into the current reader with defaults filled."""

from __future__ import annotations

import json
from dataclasses import fields
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from relay.contract import encode, encode_activity
from relay.contract.activity import RECORD_TYPES, Activity, XpEarned, record_name
from relay.contract.catalogue import Catalogue, default_catalogue, default_schema_dir
from relay.contract.decode import Decoder, RegistryLookupRequired
from relay.contract.wire import frame_confluent, frame_single_object
from tests.shared import (
    EVENT_ID,
    FIXTURE_SCHEMAS,
    NS,
    OCCURRED,
    SHORT_NAMES,
    defaults_of,
    entry,
    expected_value,
    fixed_checks,
    full,
    minimal,
    plain_datum,
    raw_body,
)

FRAMINGS = ("single-object", "confluent")


def assert_matches(activity: Activity, short: str, record: dict[str, Any]) -> None:
    assert record_name(activity) == f"{NS}.{short}"
    for name, value in record.items():
        assert getattr(activity, name) == expected_value(value), name
    for name, default in defaults_of(short).items():
        if name not in record:
            assert getattr(activity, name) == default, name
    assert {f.name for f in fields(activity)} >= set(record)


@pytest.mark.parametrize("framing", FRAMINGS)
@pytest.mark.parametrize("short", SHORT_NAMES)
@pytest.mark.parametrize("sample", [full, minimal], ids=["full", "minimal"])
async def test_every_record_type_round_trips(
    decoder: Decoder, registry: SchemaRegistryClient, framing: Any, short: str, sample: Any
) -> None:
    record = sample(short)
    value = encode(short, record, framing=framing, registry=registry)
    assert value[:2] == b"\xc3\x01" if framing == "single-object" else value[:1] == b"\x00"
    activity = await decoder.decode(value)
    assert_matches(activity, short, record)
    assert activity.occurred_at == OCCURRED and activity.occurred_at.tzinfo is not None
    assert decoder.decode_sync(value) == activity  # the id is cached now: no round-trip


@pytest.mark.parametrize("short", SHORT_NAMES)
def test_full_names_and_activities_encode_alike(short: str) -> None:
    by_short = encode(short, full(short))
    assert encode(f"{NS}.{short}", full(short)) == by_short
    activity = Decoder(default_catalogue(), fixed_checks()).decode_sync(by_short)
    assert encode_activity(activity) == encode(short, {**full(short), "event_id": EVENT_ID})


def test_confluent_subject_defaults_to_the_record_name(registry: SchemaRegistryClient) -> None:
    record = full("ResourceViewed")
    encode("ResourceViewed", record, framing="confluent", registry=registry)
    encode("ResourceViewed", record, framing="confluent", registry=registry, subject="clicks-value")
    subjects = registry.get_subjects()
    assert f"{NS}.ResourceViewed" in subjects and "clicks-value" in subjects


def test_decode_sync_asks_for_the_registry_on_an_unseen_id(registry: SchemaRegistryClient) -> None:
    value = encode("XpEarned", full("XpEarned"), framing="confluent", registry=registry)
    fresh = Decoder(default_catalogue(), fixed_checks(), registry)
    with pytest.raises(RegistryLookupRequired) as caught:
        fresh.decode_sync(value)
    assert caught.value.schema_id == int.from_bytes(value[1:5], "big")


def test_catalogue_fingerprints_are_the_single_object_ones() -> None:
    # The Avro spec's own example: the CRC-64-AVRO fingerprint of "int" (parsing canonical form).
    from relay.contract.catalogue import fingerprint_of

    assert fingerprint_of({"type": "int"}) == bytes.fromhex("8f5c393f1ad57572")
    cat = default_catalogue()
    assert set(cat.names()) == set(RECORD_TYPES)
    for name in cat.names():
        assert len(cat.fingerprint(name)) == 8
        assert cat.writer_by_fingerprint(cat.fingerprint(name)) is cat.reader(name)
    assert len({cat.fingerprint(name) for name in cat.names()}) == len(cat.names())


# -- evolution ----------------------------------------------------------------------------------


def old_xp_earned() -> tuple[Catalogue, bytes]:
    """The catalogue with the fixture schemas, and an XpEarned body written by v0 (no attempt)."""
    catalogue = Catalogue.load(default_schema_dir(), FIXTURE_SCHEMAS)
    v0 = entry("XpEarned", catalogue, version=0)
    datum = plain_datum("XpEarned", full("XpEarned"))
    del datum["attempt"]
    return catalogue, raw_body(v0, datum)


def test_older_writer_decodes_into_the_newest_reader_single_object() -> None:
    catalogue, body = old_xp_earned()
    v0, v1 = entry("XpEarned", catalogue, 0), entry("XpEarned", catalogue)
    assert (v1.version, v0.fingerprint != v1.fingerprint) == (1, True)
    assert "attempt" not in {f["name"] for f in v0.plain["fields"]}
    activity = Decoder(catalogue, fixed_checks()).decode_sync(
        frame_single_object(v0.fingerprint, body)
    )
    expected = {k: v for k, v in full("XpEarned").items() if k != "attempt"}
    assert_matches(activity, "XpEarned", expected)
    assert isinstance(activity, XpEarned) and activity.attempt == 1  # the reader's default


async def test_older_writer_decodes_into_the_newest_reader_confluent(
    registry: SchemaRegistryClient,
) -> None:
    catalogue, body = old_xp_earned()
    v0 = entry("XpEarned", catalogue, 0)
    schema_id = registry.register_schema("old-xp-value", Schema(v0.text, "AVRO"))
    # The relay's own catalogue does not know v0: the writer comes from the registry.
    decoder = Decoder(default_catalogue(), fixed_checks(), registry)
    activity = await decoder.decode(frame_confluent(schema_id, body))
    assert isinstance(activity, XpEarned)
    assert activity.attempt == 1 and activity.xp == full("XpEarned")["xp"]


async def test_newer_writer_with_an_extra_field_decodes_into_the_current_reader(
    registry: SchemaRegistryClient,
) -> None:
    newer = json.loads(entry("XpEarned").text)
    newer["fields"].append({"name": "streak", "type": "int", "default": 0})
    schema_id = registry.register_schema("newer-xp-value", Schema(json.dumps(newer), "AVRO"))
    from io import BytesIO

    from fastavro import parse_schema, schemaless_writer

    buf = BytesIO()
    datum = {**plain_datum("XpEarned", full("XpEarned")), "streak": 9}
    schemaless_writer(buf, parse_schema(newer, named_schemas={}), datum)
    decoder = Decoder(default_catalogue(), fixed_checks(), registry)
    activity = await decoder.decode(frame_confluent(schema_id, buf.getvalue()))
    assert_matches(activity, "XpEarned", full("XpEarned"))
