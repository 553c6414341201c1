"""The poison corpus: records no relay can deliver, each with the dead-letter reason it must get.

Every entry is built from a well-formed XpEarned record and broken in one way. The expected
(stage, reason) pairs are the contract of relay/contract (wire.py, decode.py, build.py) and of the
course resolver, written down here rather than asked of the relay's code:

- random-bytes: 64 random bytes, not starting 0x00 or 0xC3 -> decode/unknown-framing
- empty-value: b"" -> decode/unknown-framing
- short-header: 0xC3 0x01 + 3 bytes, no room for a fingerprint -> decode/unknown-framing
- wrong-framing-byte: a good record whose first byte is 0x01 -> decode/unknown-framing
- truncated-avro: a good record cut in half -> decode/avro-decode-error
- unknown-schema-id: Confluent framing, schema id 987654, no registry -> decode/unknown-schema-id
- unknown-fingerprint: single-object framing, an unknown fingerprint -> decode/unknown-fingerprint
- missing-required-field: written without ``event_id`` -> decode/avro-decode-error
- invalid-utf8: activity.name starting with bytes 0xFF 0xFE -> decode/avro-decode-error
- nan-xp, inf-xp, -inf-xp: xp is NaN, +inf, -inf -> validate/invalid-field
- far-future: occurred_at ten years ahead -> validate/invalid-field
- unknown-subject: subject "Astrology" -> enrich/subject-invalid
- oversized-2mb: a valid record with a 2 MiB activity name -> deliver/api-rejected (HTTP 413)

The 2 MiB record is valid Avro and a valid activity: the relay maps it and the API refuses the
event (the sandbox, like any aiohttp server, caps request bodies at 1 MiB: 413), so it is
dead-lettered by the deliver stage, and its dead letter (over 2 MiB) must fit the DLQ producer.
"""

from __future__ import annotations

import io
import json
import math
import random
import struct
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastavro import parse_schema, schemaless_writer

from relay.contract import encode
from relay.contract.build import Checks
from relay.contract.catalogue import default_catalogue
from relay.contract.json_input import to_datum
from relay.contract.wire import frame_confluent, frame_single_object
from tests.reliability.ledger import Expected

XP_MARK = 4321.125  # exactly representable: its 8 bytes are found and replaced
NAME_MARK = "NAME-MARK"
TWO_MIB = 2 * 1024 * 1024
FULL = "timeback.activity.XpEarned"
DECODE, VALIDATE = "decode", "validate"

POISON_KINDS: dict[str, tuple[str, str]] = {
    "random-bytes": (DECODE, "unknown-framing"),
    "empty-value": (DECODE, "unknown-framing"),
    "short-header": (DECODE, "unknown-framing"),
    "wrong-framing-byte": (DECODE, "unknown-framing"),
    "truncated-avro": (DECODE, "avro-decode-error"),
    "unknown-schema-id": (DECODE, "unknown-schema-id"),
    "unknown-fingerprint": (DECODE, "unknown-fingerprint"),
    "missing-required-field": (DECODE, "avro-decode-error"),
    "invalid-utf8": (DECODE, "avro-decode-error"),
    "nan-xp": (VALIDATE, "invalid-field"),
    "inf-xp": (VALIDATE, "invalid-field"),
    "-inf-xp": (VALIDATE, "invalid-field"),
    "far-future": (VALIDATE, "invalid-field"),
    "unknown-subject": ("enrich", "subject-invalid"),
    "oversized-2mb": ("deliver", "api-rejected"),
}


class PoisonCorpus:
    """Builds the corpus for students of a traffic plan (their course and subject)."""

    def __init__(self, student: str, course_id: str, subject: str, seed: int = 11) -> None:
        self.rng = random.Random(seed)
        self.student, self.course_id, self.subject = student, course_id, subject

    def fields(self, **overrides: Any) -> dict[str, Any]:
        return {
            "event_id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "occurred_at": datetime.now(UTC) - timedelta(minutes=5),
            "student_id": self.student,
            "activity": {"id": f"{self.course_id}/lessons/poison", "name": NAME_MARK},
            "xp": XP_MARK,
            "attempt": 1,
            "course_id": self.course_id,
            "subject": self.subject,
            **overrides,
        }

    def good(self, **overrides: Any) -> tuple[dict[str, Any], bytes]:
        fields = self.fields(**overrides)
        lenient = Checks(allow_negative_xp=True, max_clock_skew=20 * 365 * 86400.0)
        return fields, encode("XpEarned", fields, checks=lenient)

    def build(self, kind: str) -> Expected:
        fields, value = self.good()
        if kind == "random-bytes":
            value = bytes([self.rng.choice([b for b in range(1, 256) if b != 0xC3])])
            value += self.rng.randbytes(63)
        elif kind == "empty-value":
            value = b""
        elif kind == "short-header":
            value = b"\xc3\x01" + self.rng.randbytes(3)
        elif kind == "wrong-framing-byte":
            value = b"\x01" + value[1:]
        elif kind == "truncated-avro":
            value = value[: len(value) // 2]
        elif kind == "unknown-schema-id":
            value = frame_confluent(987654, value[10:])
        elif kind == "unknown-fingerprint":
            value = frame_single_object(self.rng.randbytes(8), value[10:])
        elif kind == "missing-required-field":
            value = _without_field(fields, "event_id")
        elif kind == "invalid-utf8":
            value = value.replace(NAME_MARK.encode(), b"\xff\xfe" + NAME_MARK.encode()[2:], 1)
        elif kind in ("nan-xp", "inf-xp", "-inf-xp"):
            bad = {"nan-xp": math.nan, "inf-xp": math.inf, "-inf-xp": -math.inf}[kind]
            value = value.replace(struct.pack("<d", XP_MARK), struct.pack("<d", bad), 1)
        elif kind == "far-future":
            fields, value = self.good(occurred_at=datetime.now(UTC) + timedelta(days=3650))
        elif kind == "unknown-subject":
            fields, value = self.good(subject="Astrology")
        elif kind == "oversized-2mb":
            big = {"id": f"{self.course_id}/lessons/huge", "name": "x" * TWO_MIB}
            fields, value = self.good(activity=big)
        else:
            raise ValueError(f"unknown poison kind {kind!r}")
        return Expected(
            self.student.encode(),
            value,
            fields["event_id"],
            "XpEarned",
            kind,
            POISON_KINDS[kind],
        )

    def corpus(self, kinds: tuple[str, ...] = tuple(POISON_KINDS)) -> list[Expected]:
        return [self.build(kind) for kind in kinds]


def _without_field(fields: dict[str, Any], name: str) -> bytes:
    """The record written with a schema lacking ``name``, framed with XpEarned's fingerprint."""
    catalogue = default_catalogue()
    entry = catalogue.entry(FULL)
    schema = json.loads(json.dumps(entry.plain))
    schema["fields"] = [f for f in schema["fields"] if f["name"] != name]
    datum = to_datum(FULL, fields, catalogue)
    datum.pop(name)
    buf = io.BytesIO()
    schemaless_writer(buf, parse_schema(schema), datum)
    return frame_single_object(entry.fingerprint, buf.getvalue())
