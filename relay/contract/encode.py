"""The producer side: a Python app's record -> the bytes of a Kafka value the relay accepts.

``encode("XpEarned", {...})`` checks the record exactly as the relay will (the same coercion,
schema validation and semantic checks; a failure is the ``Rejection`` the relay would dead-letter
it with, naming the field), writes it with the newest schema of its type and frames it:

- ``single-object`` (default): ``0xC3 0x01`` + the schema fingerprint. No Schema Registry needed:
  the relay knows every schema version of the catalogue.
- ``confluent``: ``0x00`` + the Schema Registry id of the schema, registered (or looked up) under
  ``subject`` with the given ``SchemaRegistryClient``. The subject defaults to the full record name
  (``timeback.activity.XpEarned``, Confluent's RecordNameStrategy) because the topic is not known
  here; pass ``subject=f"{topic}-value"`` for the TopicNameStrategy.
"""

from __future__ import annotations

import inspect
import weakref
from collections.abc import Mapping
from io import BytesIO
from typing import TYPE_CHECKING, Any, Literal

from fastavro import schemaless_writer

from relay.contract.activity import Activity, record_name
from relay.contract.build import Checks, activity_from_record
from relay.contract.catalogue import Catalogue, SchemaEntry, default_catalogue
from relay.contract.json_input import as_mapping, resolve_type, to_datum
from relay.contract.wire import frame_confluent, frame_single_object

if TYPE_CHECKING:
    from confluent_kafka.schema_registry import SchemaRegistryClient

FramingName = Literal["single-object", "confluent"]

# The relay's default checks, except negative xp: accepting corrections is the relay's policy
# (RELAY_ALLOW_NEGATIVE_XP), which a producer cannot know, so the encoder lets them through.
PRODUCER_CHECKS = Checks(allow_negative_xp=True)
# registry client -> {(subject, fingerprint): schema id}; weak, so a dropped client is forgotten.
_schema_ids: weakref.WeakKeyDictionary[Any, dict[tuple[str, bytes], int]] = (
    weakref.WeakKeyDictionary()
)


def encode(
    record_type: str,
    value: Mapping[str, Any] | Activity,
    *,
    framing: FramingName = "single-object",
    registry: SchemaRegistryClient | None = None,
    subject: str | None = None,
    catalogue: Catalogue | None = None,
    checks: Checks | None = None,
) -> bytes:
    """The framed Avro bytes of one activity record.

    ``record_type`` is a short (``XpEarned``) or full (``timeback.activity.XpEarned``) name;
    ``value`` a mapping of the record's fields (timestamps as aware datetimes, ISO-8601 strings or
    epoch milliseconds; optional fields may be left out) or an Activity dataclass. ``checks``
    defaults to ``PRODUCER_CHECKS``: the relay's defaults (occurred_at at most 300 s ahead of this
    machine's clock) except that negative xp is let through, since accepting it is the relay's
    setting; pass ``Checks()`` to refuse it here too.

    Raises ``Rejection`` (reason ``unsupported-record`` or ``invalid-field``, detail naming the
    field) for a record the relay would refuse, ``ValueError`` for bad arguments; errors of the
    Schema Registry client propagate as they are.
    """
    cat = catalogue or default_catalogue()
    full_name = resolve_type(cat, record_type)
    datum = to_datum(full_name, as_mapping(value), cat)
    activity_from_record(full_name, datum, checks or PRODUCER_CHECKS)
    entry = cat.entry(full_name)
    buf = BytesIO()
    schemaless_writer(buf, entry.plain, datum)
    if framing == "single-object":
        return frame_single_object(entry.fingerprint, buf.getvalue())
    if framing == "confluent":
        schema_id = _registered_id(registry, subject or full_name, entry)
        return frame_confluent(schema_id, buf.getvalue())
    raise ValueError(f"framing: must be 'single-object' or 'confluent', got {framing!r}")


def encode_activity(activity: Activity, **options: Any) -> bytes:
    """``encode`` of a typed Activity: the record type is the activity's own."""
    return encode(record_name(activity), activity, **options)


def _registered_id(registry: SchemaRegistryClient | None, subject: str, entry: SchemaEntry) -> int:
    if registry is None:
        raise ValueError("registry: a SchemaRegistryClient is required for confluent framing")
    if inspect.iscoroutinefunction(registry.register_schema):
        raise ValueError("registry: encode is synchronous; pass a (sync) SchemaRegistryClient")
    known = _schema_ids.setdefault(registry, {})
    key = (subject, entry.fingerprint)
    if key not in known:
        from confluent_kafka.schema_registry import Schema

        known[key] = registry.register_schema(subject, Schema(entry.text, "AVRO"))
    return known[key]
