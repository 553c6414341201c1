"""Every decode rejection reason, and the Schema Registry's failures: transient, systemic, 404."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from confluent_kafka.schema_registry import (
    AsyncSchemaRegistryClient,
    Schema,
    SchemaRegistryClient,
)

from relay.config import load_settings
from relay.contract import encode
from relay.contract.activity import XpEarned
from relay.contract.catalogue import Catalogue, default_catalogue, default_schema_dir
from relay.contract.decode import Decoder
from relay.contract.wire import frame_confluent, frame_single_object
from relay.errors import Rejection, SystemicError, TransientError
from tests.shared import (
    FIXTURE_SCHEMAS,
    entry,
    fixed_checks,
    full,
    raw_value,
)


async def rejection_of(decoder: Decoder, value: bytes) -> Rejection:
    with pytest.raises(Rejection) as caught:
        await decoder.decode(value)
    return caught.value


@pytest.mark.parametrize(
    "value", [b"", b"\x7f", b'{"json": true}', b"\xc3\x02" + bytes(20), b"\x00\x00", b"\xc3\x01abc"]
)
async def test_unknown_framing(decoder: Decoder, value: bytes) -> None:
    rejection = await rejection_of(decoder, value)
    assert (rejection.stage, rejection.reason) == ("decode", "unknown-framing")


async def test_unknown_fingerprint(decoder: Decoder) -> None:
    good = encode("XpEarned", full("XpEarned"))
    rejection = await rejection_of(decoder, frame_single_object(b"\x01" * 8, good[10:]))
    assert (rejection.stage, rejection.reason) == ("decode", "unknown-fingerprint")
    assert "0101010101010101" in rejection.detail


async def test_unknown_schema_id_in_the_registry(decoder: Decoder) -> None:
    good = encode("XpEarned", full("XpEarned"))
    rejection = await rejection_of(decoder, frame_confluent(999_999, good[10:]))
    assert (rejection.stage, rejection.reason) == ("decode", "unknown-schema-id")
    assert "999999" in rejection.detail


def test_confluent_framing_without_a_registry_is_unknown_schema_id(
    registry: SchemaRegistryClient,
) -> None:
    value = encode("XpEarned", full("XpEarned"), framing="confluent", registry=registry)
    with pytest.raises(Rejection) as caught:
        Decoder(default_catalogue(), fixed_checks()).decode_sync(value)
    assert caught.value.reason == "unknown-schema-id"
    assert "RELAY_SCHEMA_REGISTRY_URL" in caught.value.detail


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda v: v[:-3], "EOFError"),
        (lambda v: v + b"\x00", "1 bytes after the end"),
        # event_id's first byte becomes 0xff: not UTF-8
        (lambda v: v[:11] + b"\xff" + v[12:], "UnicodeDecodeError"),
    ],
    ids=["truncated", "appended", "bad-utf8"],
)
async def test_avro_decode_error(decoder: Decoder, mangle: object, words: str) -> None:
    value = mangle(encode("XpEarned", full("XpEarned")))  # type: ignore[operator]
    rejection = await rejection_of(decoder, value)
    assert (rejection.stage, rejection.reason) == ("decode", "avro-decode-error")
    assert words in rejection.detail and "XpEarned" in rejection.detail


async def test_bad_enum_index_is_an_avro_decode_error(decoder: Decoder) -> None:
    value = bytearray(encode("SessionChanged", full("SessionChanged")))
    value[-1] = 0x0E  # action: zigzag 7, past the 3 symbols
    rejection = await rejection_of(decoder, bytes(value))
    assert rejection.reason == "avro-decode-error"


async def test_unsupported_record_from_the_catalogue() -> None:
    catalogue = Catalogue.load(default_schema_dir(), FIXTURE_SCHEMAS)
    unrelated = catalogue.entry("timeback.activity.Unrelated")
    decoder = Decoder(catalogue, fixed_checks())
    rejection = await rejection_of(decoder, frame_single_object(unrelated.fingerprint, b"\x02a"))
    assert (rejection.stage, rejection.reason) == ("decode", "unsupported-record")
    assert "Unrelated" in rejection.detail


@pytest.mark.parametrize(
    "schema",
    [
        Schema(json.dumps({"type": "record", "name": "com.example.Order", "fields": []}), "AVRO"),
        Schema('"string"', "AVRO"),
        Schema('{"type": "record", "name": "Broken", "fields": [{"name": "x"}]}', "AVRO"),
        Schema('{"type": "object"}', "JSON"),
    ],
    ids=["other-record", "not-a-record", "unparseable", "json-schema"],
)
async def test_unsupported_record_from_the_registry(
    decoder: Decoder, registry: SchemaRegistryClient, schema: Schema
) -> None:
    schema_id = registry.register_schema(f"unsupported-{id(schema)}", schema)
    for _ in range(2):  # the second time from the cache, with the same answer
        rejection = await rejection_of(decoder, frame_confluent(schema_id, b"\x02"))
        assert (rejection.stage, rejection.reason) == ("decode", "unsupported-record")


async def test_invalid_field_from_the_wire(decoder: Decoder) -> None:
    rejection = await rejection_of(decoder, raw_value("XpEarned", {**full("XpEarned"), "xp": -1.0}))
    assert (rejection.stage, rejection.reason) == ("validate", "invalid-field")
    assert rejection.detail.startswith("xp: ")


# -- a real HTTP Schema Registry (aiohttp) that fails on purpose ------------------------------

XP_SCHEMA = entry("XpEarned").text


class FakeRegistry:
    """/schemas/ids/{id}: 1 answers the XpEarned schema, 404/403/500/503 answer that status.

    A stand-in kept for named faults only: the real registry (tests/registry.py) cannot be made to
    answer 500, 503 or 403 for one id, nor to hold a reply until the test releases it (the gate).
    The relay's trials against the real server are tests/integration/test_pipeline_registry*.py.
    """

    def __init__(self) -> None:
        self.calls: dict[int, int] = {}
        self.gate = asyncio.Event()  # cleared: requests wait for it
        self.gate.set()
        self.arrived = asyncio.Event()  # set at the first request

    async def schema(self, request: web.Request) -> web.Response:
        schema_id = int(request.match_info["id"])
        self.calls[schema_id] = self.calls.get(schema_id, 0) + 1
        self.arrived.set()
        await self.gate.wait()
        if schema_id == 1:
            return web.json_response({"schema": XP_SCHEMA, "schemaType": "AVRO"})
        code = 40403 if schema_id == 404 else 50001
        body = {"error_code": code, "message": f"status {schema_id}"}
        return web.json_response(body, status=schema_id)


@pytest.fixture
async def fake_registry() -> AsyncIterator[tuple[str, FakeRegistry]]:
    fake = FakeRegistry()
    app = web.Application()
    app.router.add_get("/schemas/ids/{id}", fake.schema)
    async with TestServer(app) as running:
        yield f"http://127.0.0.1:{running.port}", fake


def clients(url: str) -> list[SchemaRegistryClient | AsyncSchemaRegistryClient]:
    conf = {"url": url, "max.retries": 0, "timeout": 5}
    return [SchemaRegistryClient.new_client(conf), AsyncSchemaRegistryClient.new_client(conf)]


def body() -> bytes:
    return encode("XpEarned", full("XpEarned"))[10:]


@pytest.mark.parametrize("which", [0, 1], ids=["sync-client", "async-client"])
async def test_registry_answers_are_classified(
    fake_registry: tuple[str, FakeRegistry], which: int
) -> None:
    url, fake = fake_registry
    decoder = Decoder(default_catalogue(), fixed_checks(), clients(url)[which])
    activity = await decoder.decode(frame_confluent(1, body()))
    assert isinstance(activity, XpEarned) and activity.xp == full("XpEarned")["xp"]
    with pytest.raises(TransientError):
        await decoder.decode(frame_confluent(500, body()))
    with pytest.raises(TransientError):
        await decoder.decode(frame_confluent(503, body()))
    with pytest.raises(SystemicError):
        await decoder.decode(frame_confluent(403, body()))
    for _ in range(3):
        assert (await rejection_of(decoder, frame_confluent(404, body()))).reason == (
            "unknown-schema-id"
        )
    assert fake.calls[404] == 1  # a 404 is remembered for a while: a flood does not hammer it
    assert fake.calls[500] == 1 and fake.calls[1] == 1
    with pytest.raises(TransientError):  # a transient failure is not remembered
        await decoder.decode(frame_confluent(500, body()))
    assert fake.calls[500] == 2


async def test_one_registry_call_for_many_waiting_records(
    fake_registry: tuple[str, FakeRegistry],
) -> None:
    url, fake = fake_registry
    decoder = Decoder(default_catalogue(), fixed_checks(), clients(url)[1])
    fake.gate.clear()
    waiting = [asyncio.create_task(decoder.decode(frame_confluent(1, body()))) for _ in range(20)]
    await fake.arrived.wait()
    waiting[0].cancel()  # one waiter going away must not cancel the shared fetch
    fake.gate.set()
    results = await asyncio.gather(*waiting[1:])
    assert {activity.event_id for activity in results} == {full("XpEarned")["event_id"]}
    assert fake.calls == {1: 1}


@pytest.mark.parametrize("which", [0, 1], ids=["sync-client", "async-client"])
async def test_unreachable_registry_is_transient(which: int) -> None:
    from bench.ports import free_port

    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    decoder = Decoder(default_catalogue(), fixed_checks(), clients(url)[which])
    with pytest.raises(TransientError) as caught:
        await decoder.decode(frame_confluent(7, body()))
    assert "schema id 7" in str(caught.value)


async def test_from_settings_builds_the_checks_and_an_async_registry_client() -> None:
    settings = load_settings(
        schema_registry_url="mock://from-settings",
        allow_insecure_http=True,  # mock:// is not https
        allow_negative_xp=True,
        max_clock_skew=5,
    )
    decoder = Decoder.from_settings(settings)
    assert decoder.checks.allow_negative_xp and decoder.checks.max_clock_skew == 5
    rejection = await rejection_of(decoder, frame_confluent(1, body()))
    assert rejection.reason == "unknown-schema-id"  # an empty mock registry, asked asynchronously
