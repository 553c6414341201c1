"""Wire framings of an Avro record in a Kafka value.

- Confluent: ``0x00`` + 4-byte big-endian schema id (the Schema Registry's) + Avro binary body.
- Avro single-object encoding: ``0xC3 0x01`` + 8-byte little-endian CRC-64-AVRO fingerprint of
  the writer schema's parsing canonical form + Avro binary body.

The first byte tells them apart: a single-object value never starts with ``0x00``.
"""

from __future__ import annotations

import enum
from typing import Final, NamedTuple

from relay.errors import Rejection

CONFLUENT_MAGIC: Final = b"\x00"
SINGLE_OBJECT_MAGIC: Final = b"\xc3\x01"
CONFLUENT_HEADER: Final = 5
SINGLE_OBJECT_HEADER: Final = 10
_MAX_SCHEMA_ID: Final = 2**32 - 1


class Framing(enum.StrEnum):
    CONFLUENT = "confluent"
    SINGLE_OBJECT = "single-object"


class Frame(NamedTuple):
    """A value split into its framing, its writer key and where the Avro body starts.

    ``key`` is the schema id (int) for Confluent framing, the 8-byte fingerprint for single-object.
    """

    framing: Framing
    key: int | bytes
    offset: int


def unframe(value: bytes) -> Frame:
    """Split a Kafka value; Rejection ``unknown-framing`` when it is neither framing."""
    if value[:2] == SINGLE_OBJECT_MAGIC:
        if len(value) < SINGLE_OBJECT_HEADER:
            raise _truncated(value, Framing.SINGLE_OBJECT, SINGLE_OBJECT_HEADER)
        fingerprint = bytes(value[2:SINGLE_OBJECT_HEADER])
        return Frame(Framing.SINGLE_OBJECT, fingerprint, SINGLE_OBJECT_HEADER)
    if value[:1] == CONFLUENT_MAGIC:
        if len(value) < CONFLUENT_HEADER:
            raise _truncated(value, Framing.CONFLUENT, CONFLUENT_HEADER)
        return Frame(Framing.CONFLUENT, int.from_bytes(value[1:5], "big"), CONFLUENT_HEADER)
    if not value:
        raise Rejection("decode", "unknown-framing", "empty value")
    raise Rejection(
        "decode",
        "unknown-framing",
        f"value starts with 0x{bytes(value[:2]).hex()}: neither Confluent (0x00) nor Avro "
        "single-object (0xc301) framing",
    )


def frame_confluent(schema_id: int, body: bytes) -> bytes:
    """``0x00`` + the schema id (4 bytes, big-endian) + body."""
    if not 0 <= schema_id <= _MAX_SCHEMA_ID:
        raise ValueError(f"schema_id: {schema_id} does not fit in 4 bytes")
    return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big") + body


def frame_single_object(fingerprint: bytes, body: bytes) -> bytes:
    """``0xC3 0x01`` + the 8-byte little-endian fingerprint + body."""
    if len(fingerprint) != 8:
        raise ValueError(f"fingerprint: must be 8 bytes, got {len(fingerprint)}")
    return SINGLE_OBJECT_MAGIC + fingerprint + body


def _truncated(value: bytes, framing: Framing, needed: int) -> Rejection:
    return Rejection(
        "decode",
        "unknown-framing",
        f"{framing} header needs {needed} bytes, value has {len(value)}",
    )
