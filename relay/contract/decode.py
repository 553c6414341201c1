"""Kafka value bytes -> a checked Activity, or a Rejection saying why not.

The writer schema comes from the catalogue (single-object framing: by fingerprint) or from the
Schema Registry (Confluent framing: by schema id, fetched once and cached). Every value is read
with ``schemaless_reader(body, writer, reader)`` where the reader is the newest catalogue version
of the same record, so older writers decode into the current shape with defaults filled.

``decode_sync`` is the hot path: no I/O, no schema parsing, one dict lookup per record. It raises
``RegistryLookupRequired`` for a Confluent schema id it has not seen yet; ``decode`` (async) does
that lookup, once per id however many records wait for it, and then decodes.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
import time
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any, Final

from fastavro import schemaless_reader

from relay.contract.activity import RECORD_TYPES, Activity
from relay.contract.build import Checks, activity_from_record
from relay.contract.catalogue import (
    Catalogue,
    Schema,
    SchemaEntry,
    default_catalogue,
    fingerprint_of,
    parse_both,
)
from relay.contract.registry import client_config
from relay.contract.wire import SINGLE_OBJECT_HEADER, SINGLE_OBJECT_MAGIC, unframe
from relay.errors import Rejection, SystemicError, TransientError

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import AsyncSchemaRegistryClient, SchemaRegistryClient
    from confluent_kafka.schema_registry import Schema as RegistrySchema

    from relay.config import Settings

    Registry = SchemaRegistryClient | AsyncSchemaRegistryClient

MISSING_TTL: Final = 30.0  # seconds a registry 404 is remembered (a flood must not hammer it)
_CACHE_LIMIT: Final = 10_000  # schema ids remembered; ids are few, unless a stream is garbage


class RegistryLookupRequired(LookupError):
    """``decode_sync`` met a Confluent schema id that needs a Schema Registry round-trip."""

    def __init__(self, schema_id: int) -> None:
        super().__init__(f"schema id {schema_id} is not cached: use `await decode(value)`")
        self.schema_id = schema_id


@dataclass(frozen=True, slots=True)
class _Plan:
    """How to read the records of one writer schema."""

    full_name: str
    writer: Schema  # plain parsed writer schema
    reader: Schema | None  # plain parsed reader schema; None when the writer is the reader


class Decoder:
    """Decodes and checks activity records; one per process, shared by every partition."""

    def __init__(
        self,
        catalogue: Catalogue,
        checks: Checks,
        registry: Registry | None = None,
        *,
        missing_ttl: float = MISSING_TTL,
    ) -> None:
        self.catalogue = catalogue
        self.checks = checks
        self._registry = registry
        self._registry_is_async = registry is not None and inspect.iscoroutinefunction(
            registry.get_schema
        )
        self._missing_ttl = missing_ttl
        # Every catalogue version is a possible single-object writer: plan them all up front.
        self._by_fingerprint: dict[bytes, _Plan | Rejection] = {
            entry.fingerprint: self._plan_for(entry.full_name, entry.plain, entry.fingerprint)
            for entry in catalogue
        }
        self._by_id: dict[int, _Plan | Rejection] = {}
        self._missing: dict[int, float] = {}  # schema id -> monotonic time its 404 expires
        self._fetching: dict[int, asyncio.Future[_Plan]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, catalogue: Catalogue | None = None) -> Decoder:
        """A decoder with the configured checks and, if RELAY_SCHEMA_REGISTRY_URL is set, an
        async Schema Registry client (no thread, no blocking of the event loop)."""
        registry = None
        if settings.schema_registry_url:
            from confluent_kafka.schema_registry import AsyncSchemaRegistryClient

            registry = AsyncSchemaRegistryClient.new_client(client_config(settings))
        if catalogue is None:
            catalogue = Catalogue.load(settings.schema_dir) if settings.schema_dir else None
        return cls(catalogue or default_catalogue(), Checks.from_settings(settings), registry)

    # -- decoding -----------------------------------------------------------------------------

    def decode_sync(self, value: bytes) -> Activity:
        """Decode without I/O. Raises Rejection, or RegistryLookupRequired for an unseen id."""
        if type(value) is not bytes:
            value = bytes(value)  # a bytearray or memoryview: slices must be hashable
        if value[:2] == SINGLE_OBJECT_MAGIC and len(value) >= SINGLE_OBJECT_HEADER:
            # The common case inlined: unframe() would cost as much as the checks of a record.
            return self._read(self._single_object_plan(value[2:10]), value, SINGLE_OBJECT_HEADER)
        _, key, offset = unframe(value)
        if isinstance(key, bytes):
            return self._read(self._single_object_plan(key), value, offset)
        return self._read(self._cached_id_plan(key), value, offset)

    async def decode(self, value: bytes) -> Activity:
        """Decode, fetching an unseen Confluent schema id from the Schema Registry.

        Raises Rejection, or TransientError while the registry does not answer.
        """
        try:
            return self.decode_sync(value)
        except RegistryLookupRequired as need:
            plan = await self._fetch(need.schema_id)
        return self._read(plan, value, unframe(value).offset)

    def _read(self, plan: _Plan | Rejection, value: bytes, offset: int) -> Activity:
        if isinstance(plan, Rejection):
            raise _copy(plan)
        buf = BytesIO(value)
        buf.seek(offset)
        try:
            record: Any = schemaless_reader(buf, plan.writer, plan.reader)
        # Corrupt input makes fastavro raise EOFError, ValueError, UnicodeDecodeError, IndexError,
        # OverflowError... all of them mean the same thing: these bytes are not this record.
        except Exception as exc:
            detail = f"{plan.full_name}: {type(exc).__name__}: {exc}"
            raise Rejection("decode", "avro-decode-error", detail) from None
        extra = len(value) - buf.tell()
        if extra:
            detail = f"{plan.full_name}: {extra} bytes after the end of the record"
            raise Rejection("decode", "avro-decode-error", detail)
        # Every string field is read from its own UTF-8 bytes inside ``value``, so none is longer
        # than ``value``. Not so a default a reader schema fills in: hence only without one (the
        # writer is then a catalogue schema, whose enum symbols are short names).
        fit = plan.reader is None and len(value) <= self.checks.max_field_bytes
        return activity_from_record(plan.full_name, record, self.checks, strings_fit=fit)

    # -- writer plans -------------------------------------------------------------------------

    def _plan_for(self, full_name: Any, writer: Schema, fingerprint: bytes) -> _Plan | Rejection:
        """The read plan of a writer schema, or the Rejection its records all get."""
        if writer.get("type") != "record" or full_name not in RECORD_TYPES:
            return Rejection(
                "decode", "unsupported-record", f"record type {full_name!r} is not handled"
            )
        try:
            reader: SchemaEntry = self.catalogue.entry(full_name)
        except KeyError:
            return Rejection("decode", "unsupported-record", f"no reader schema for {full_name!r}")
        same = reader.fingerprint == fingerprint
        return _Plan(full_name, writer, None if same else reader.plain)

    def _single_object_plan(self, fingerprint: bytes) -> _Plan | Rejection:
        plan = self._by_fingerprint.get(fingerprint)
        if plan is None:
            detail = f"no schema in the catalogue has fingerprint {fingerprint.hex()}"
            raise Rejection("decode", "unknown-fingerprint", detail)
        return plan

    def _cached_id_plan(self, schema_id: int) -> _Plan | Rejection:
        plan = self._by_id.get(schema_id)
        if plan is not None:
            return plan
        if self._registry is None:
            return Rejection(
                "decode",
                "unknown-schema-id",
                f"Confluent-framed record (schema id {schema_id}) but no Schema Registry is "
                "configured (RELAY_SCHEMA_REGISTRY_URL)",
            )
        expires = self._missing.get(schema_id)
        if expires is not None and expires > time.monotonic():
            return _not_found(schema_id)
        raise RegistryLookupRequired(schema_id)

    def _plan_for_registry_schema(
        self, schema_id: int, schema: RegistrySchema
    ) -> _Plan | Rejection:
        kind = schema.schema_type or "AVRO"
        if kind != "AVRO":
            return Rejection(
                "decode", "unsupported-record", f"schema id {schema_id} is {kind}, not Avro"
            )
        if schema.references:
            return Rejection(
                "decode",
                "unsupported-record",
                f"schema id {schema_id} uses schema references, which the relay does not resolve",
            )
        try:
            parsed, plain = parse_both(json.loads(schema.schema_str or ""))
            fingerprint = fingerprint_of(parsed)
        except Exception as exc:  # json and fastavro raise several types for a bad schema
            detail = f"schema id {schema_id} is not a valid Avro schema: {exc}"
            return Rejection("decode", "unsupported-record", detail)
        known = self._by_fingerprint.get(fingerprint)
        if known is not None:  # a catalogue schema: share its plan
            return known
        return self._plan_for(plain.get("name"), plain, fingerprint)

    # -- the Schema Registry ------------------------------------------------------------------

    async def _fetch(self, schema_id: int) -> _Plan:
        """The plan of ``schema_id``; one registry call however many records wait for it."""
        future = self._fetching.get(schema_id)
        if future is None:
            future = asyncio.ensure_future(self._fetch_once(schema_id))
            self._fetching[schema_id] = future
            future.add_done_callback(functools.partial(self._fetched, schema_id))
        # shield: a cancelled waiter (revoked partition) must not cancel the others' fetch.
        return await asyncio.shield(future)

    def _fetched(self, schema_id: int, future: asyncio.Future[_Plan]) -> None:
        self._fetching.pop(schema_id, None)
        if not future.cancelled():
            future.exception()  # retrieved here, so an unawaited failure logs no warning

    async def _fetch_once(self, schema_id: int) -> _Plan:
        schema = await self._get_schema(schema_id)
        plan = self._plan_for_registry_schema(schema_id, schema)
        if len(self._by_id) >= _CACHE_LIMIT:
            self._by_id.clear()
        self._by_id[schema_id] = plan  # ids are immutable: a plan or a refusal holds forever
        if isinstance(plan, Rejection):
            raise _copy(plan)
        return plan

    async def _get_schema(self, schema_id: int) -> RegistrySchema:
        from confluent_kafka.schema_registry.error import SchemaRegistryError

        registry = self._registry
        assert registry is not None
        try:
            if self._registry_is_async:
                return await registry.get_schema(schema_id)  # type: ignore[misc]
            return await asyncio.to_thread(registry.get_schema, schema_id)  # type: ignore[arg-type]
        except SchemaRegistryError as exc:
            status, message = exc.http_status_code, exc.error_message
            raise self._registry_refused(schema_id, status, message) from None
        except _no_answer_errors() as exc:  # no answer, or not a usable one
            raise TransientError(
                f"Schema Registry unavailable fetching schema id {schema_id}: "
                f"{type(exc).__name__}: {exc}"
            ) from None

    def _registry_refused(self, schema_id: int, status: int, message: str) -> Exception:
        if status == 404:
            if len(self._missing) >= _CACHE_LIMIT:
                self._missing.clear()
            self._missing[schema_id] = time.monotonic() + self._missing_ttl
            return _not_found(schema_id)
        if 400 <= status < 500 and status not in (408, 429):  # 401, 403...: not the record's fault
            return SystemicError(
                f"Schema Registry refused schema id {schema_id} (HTTP {status}: {message}); "
                "check RELAY_SCHEMA_REGISTRY_URL and its credentials"
            )
        return TransientError(f"Schema Registry answered HTTP {status} for schema id {schema_id}")


@functools.cache
def _no_answer_errors() -> tuple[type[Exception], ...]:
    """What a registry client raises when the registry does not answer usably: socket errors,
    malformed bodies and the HTTP library's errors. confluent-kafka uses httpx2 where it is
    installed and httpx otherwise, so both are looked for."""
    found: list[type[Exception]] = [OSError, ValueError]
    for module in ("httpx2", "httpx"):
        try:
            found.append(importlib.import_module(module).HTTPError)
        except ImportError:
            continue
    return tuple(found)


def _not_found(schema_id: int) -> Rejection:
    return Rejection(
        "decode", "unknown-schema-id", f"schema id {schema_id} is not in the Schema Registry"
    )


def _copy(rejection: Rejection) -> Rejection:
    # A fresh instance per raise: re-raising one cached exception would grow its traceback.
    return Rejection(rejection.stage, rejection.reason, rejection.detail)
