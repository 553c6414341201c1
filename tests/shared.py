"""What the unit tests share: sample records of every activity type, and a fixed time.

``full(t)`` fills every optional field, ``minimal(t)`` only the required ones. ``raw_value``
writes a datum with no checks at all, so tests can put on the wire what ``encode`` refuses.
``WHEN`` is the activity time of the hand-built activities (mapping, courses, validation).
The pytest fixtures built on these (a mock Schema Registry, a decoder) are in
tests/unit/conftest.py; tests/unit/test_contract_samples.py checks that the samples cover
every record type.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from io import BytesIO
from pathlib import Path
from typing import Any

from fastavro import schemaless_writer

from relay.contract.activity import ActivityRef
from relay.contract.build import Checks
from relay.contract.catalogue import Catalogue, SchemaEntry, default_catalogue
from relay.contract.wire import frame_confluent, frame_single_object

FIXTURE_SCHEMAS = Path(__file__).resolve().parent / "fixtures" / "schemas"
WHEN = datetime(2026, 1, 15, 14, 30, tzinfo=UTC)
NS = "timeback.activity"
NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
OCCURRED = NOW - timedelta(minutes=5, milliseconds=877)  # a millisecond part on purpose
EVENT_ID = "0b6f1c7e-3a59-4c1e-9d6f-2f6a8e4b7c10"
KNOWN_REASONS = frozenset(
    {
        "unknown-framing",
        "unknown-schema-id",
        "unknown-fingerprint",
        "avro-decode-error",
        "unsupported-record",
        "invalid-field",
    }
)
SHORT_NAMES = ("XpEarned", "AssessmentProgress", "QuestionAnswered", "ResourceViewed",
               "SessionChanged")  # fmt: skip


def fixed_checks(**overrides: Any) -> Checks:
    return Checks(now=lambda: NOW, **overrides)


def _ref(kind: str) -> dict[str, str]:
    return {"id": f"https://app.example/{kind}/42", "name": f"The {kind}"}


_REQUIRED: dict[str, dict[str, Any]] = {
    "XpEarned": {"activity": _ref("lesson"), "xp": 12.5},
    "AssessmentProgress": {"assessment": _ref("quiz"), "action": "SUBMITTED"},
    "QuestionAnswered": {"item": _ref("item")},
    "ResourceViewed": {"resource": _ref("video")},
    "SessionChanged": {"session_id": "sess-7", "action": "LOGGED_OUT"},
}
_COURSE = {"course_id": "course-math-5", "subject": "Math"}
_OPTIONAL: dict[str, dict[str, Any]] = {
    "XpEarned": {"attempt": 2, **_COURSE},
    "AssessmentProgress": {
        "attempt": 3,
        "started_at": OCCURRED - timedelta(minutes=20),
        "ended_at": OCCURRED,
        "total_questions": 10,
        "correct_questions": 7,
        **_COURSE,
    },
    "QuestionAnswered": {
        "assessment": _ref("quiz"),
        "response": "B\nwith a second line, é and 😀",
        "correct": False,
        "started_at": OCCURRED - timedelta(seconds=30),
        "ended_at": OCCURRED,
        "attempt": 2,
        **_COURSE,
    },
    "ResourceViewed": dict(_COURSE),
    "SessionChanged": {},
}


def minimal(short: str) -> dict[str, Any]:
    header = {"event_id": EVENT_ID, "occurred_at": OCCURRED, "student_id": "student-1"}
    return {**header, **_REQUIRED[short]}


def full(short: str) -> dict[str, Any]:
    return {**minimal(short), **_OPTIONAL[short]}


def expected_value(value: Any) -> Any:
    """What a sample field becomes in the Activity."""
    if isinstance(value, dict):
        return ActivityRef(value["id"], value["name"])
    return value


def defaults_of(short: str) -> dict[str, Any]:
    """Fields a minimal record leaves out and the value the Activity then has."""
    left_out = set(_OPTIONAL[short]) - set(_REQUIRED[short])
    return {name: 1 if name == "attempt" else None for name in left_out}


def entry(name: str, catalogue: Catalogue | None = None, version: int | None = None) -> SchemaEntry:
    cat = catalogue or default_catalogue()
    full_name = f"{NS}.{name}"
    return cat.entry(full_name) if version is None else cat.version(full_name, version)


def plain_datum(short: str, record: dict[str, Any]) -> dict[str, Any]:
    """A sample as an Avro datum of the plain schema (epoch ms), every field present."""
    datum = {key: _millis(value) for key, value in record.items()}
    for field in entry(short).plain["fields"]:
        datum.setdefault(field["name"], field.get("default"))
    return datum


def raw_body(schema_entry: SchemaEntry, datum: dict[str, Any]) -> bytes:
    buf = BytesIO()
    schemaless_writer(buf, schema_entry.plain, datum)
    return buf.getvalue()


def raw_value(short: str, record: dict[str, Any], schema_id: int | None = None) -> bytes:
    """The framed bytes of a datum written with no checks (single-object unless schema_id)."""
    schema_entry = entry(short)
    body = raw_body(schema_entry, plain_datum(short, record))
    if schema_id is not None:
        return frame_confluent(schema_id, body)
    return frame_single_object(schema_entry.fingerprint, body)


def _millis(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return value


def self_signed(
    common_name: str, *, ca: bool = False, hosts: Sequence[str] = ()
) -> tuple[Any, Any]:
    """A self-signed EC certificate (valid from yesterday for 30 days) and its private key, as
    ``cryptography`` objects; ``ca`` marks it a CA, ``hosts`` (names or IP addresses) are its
    subject alternative names. Skips when ``cryptography`` is missing."""
    import ipaddress

    import pytest

    x509 = pytest.importorskip("cryptography.x509")
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
    )
    if hosts:
        names = [_subject_alternative(x509, ipaddress, host) for host in hosts]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    return builder.sign(key, hashes.SHA256()), key


def _subject_alternative(x509: Any, ipaddress: Any, host: str) -> Any:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:  # not an address: a DNS name
        return x509.DNSName(host)
