"""Identifiers and times of emitted events: deterministic event ids, entity IRIs, the .SSSZ format.

- Event ids are ``urn:uuid:`` + UUIDv5 of (record type, producer event id, index), so a retry,
  a redelivery or a DLQ replay gives byte-identical events (docs/architecture.md#decisions-and-why).
- Users, courses and the app are IRIs on the TimeBack host (docs/partner-api.md#base-url-and-iris).
- Activity ids are absolute IRIs as given, or local ids placed under RELAY_ACTIVITY_BASE_URL.
- Times are UTC with three fractional digits and a literal ``Z`` (docs/caliper-rules.md#formats).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from hashlib import sha1
from typing import Final
from urllib.parse import quote, unquote

from relay.errors import Rejection

# "http://x", "urn:…", "tag:…": a scheme, no whitespace. Anything else is an id local to the app.
# Only these schemes count, so a local id such as "math:lesson-3" is not mistaken for an IRI.
_ABSOLUTE_IRI: Final = re.compile(r"(?:[A-Za-z][A-Za-z0-9+.\-]*://|urn:|tag:)\S+\Z", re.IGNORECASE)
_USERS: Final = "/rostering/1.0/users/"
_COURSES: Final = "/rostering/1.0/courses/"
_APPS: Final = "/applications/1.0/"
# Characters left as they are when a local id becomes a path segment; the rest is %-encoded
# (including "%" itself, so the encoding is injective and two ids never share an IRI).
_SEGMENT_SAFE: Final = "-._~!$&'()*+,;=:@"
_PLAIN_SEGMENT: Final = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@]*\Z")
_PLAIN_PATH: Final = re.compile(r"[A-Za-z0-9\-._~!$&'()*+,;=:@/]*\Z")
_UNSAFE: Final = {ord(c): f"%{ord(c):02X}" for c in '<>"{}|\\^`'}
_HAS_UNSAFE: Final = re.compile(r'[<>"{}|\\^`]')
_UUID_NS_SEPARATOR: Final = "\x1f"  # cannot occur in a record name; keeps name parts apart
_TIME_FORMAT: Final = "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ"
# A UUID in its canonical text form, any case (what uuid.UUID(value).urn gives back, lowered).
_CANONICAL_UUID: Final = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)


def event_id(namespace: uuid.UUID, record_type: str, producer_event_id: str, index: int) -> str:
    """The id of the ``index``-th event made from one record: ``urn:uuid:`` + UUIDv5.

    Equal to ``uuid.uuid5(namespace, name).urn``, the name the record type, the producer's event
    id and the index joined by U+001F; computed by ``EventIds``, which the mapper keeps (the
    namespace's bytes and each record type's prefix made once).
    """
    return EventIds(namespace)(record_type, producer_event_id, index)


class EventIds:
    """``event_id`` under one namespace, for every event mapped: the bytes hashed before the
    producer's event id (namespace, record type) are made once per record type."""

    __slots__ = ("_namespace", "_prefixes")

    def __init__(self, namespace: uuid.UUID) -> None:
        self._namespace: Final = namespace.bytes  # UUID.bytes builds them anew on every read
        self._prefixes: dict[str, bytes] = {}  # by record type: a handful

    def __call__(self, record_type: str, producer_event_id: str, index: int) -> str:
        prefix = self._prefixes.get(record_type)
        if prefix is None:
            prefix = self._namespace + f"{record_type}{_UUID_NS_SEPARATOR}".encode()
            self._prefixes[record_type] = prefix
        name = f"{producer_event_id}{_UUID_NS_SEPARATOR}{index}".encode()
        return _urn(sha1(prefix + name, usedforsecurity=False).hexdigest())


# The RFC 4122 variant bits (10xx) over a hex digit: its two low bits kept.
_VARIANT: Final = {f"{n:x}": "89ab"[n & 3] for n in range(16)}


def _urn(sha1_hex: str) -> str:
    """The UUIDv5 URN of a SHA-1 digest (hex): its first 16 bytes with the version digit (5) and
    the variant bits set, written as text without building bytes or a UUID."""
    h = sha1_hex
    return f"urn:uuid:{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


def format_time(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC. A naive datetime is taken as UTC, never local time."""
    u = dt if dt.tzinfo is None or dt.tzinfo is UTC else dt.astimezone(UTC)
    # %-formatting: one C call, twice as fast as an f-string with seven format specs (this runs
    # for every event); isoformat() would write +00:00 and parses its keyword.
    fields = (u.year, u.month, u.day, u.hour, u.minute, u.second, u.microsecond // 1000)
    return _TIME_FORMAT % fields


def is_absolute_iri(value: str) -> bool:
    """True for an IRI with a hierarchical scheme (``https://…``) or a ``urn:``/``tag:`` URI."""
    return _ABSOLUTE_IRI.match(value) is not None


def segment(value: str) -> str:
    """``value`` as one IRI path segment (``/`` and spaces %-encoded)."""
    if _PLAIN_SEGMENT.match(value):  # the common case, without quote()'s cost
        return value
    return quote(value, safe=_SEGMENT_SAFE)


def user_iri(iri_base: str, user_id: str) -> str:
    """STU: ``{iri_base}/rostering/1.0/users/{id}``."""
    return f"{iri_base}{_USERS}{segment(user_id)}"


def course_iri(iri_base: str, course_id: str) -> str:
    """CRS: ``{iri_base}/rostering/1.0/courses/{id}``."""
    return f"{iri_base}{_COURSES}{segment(course_id)}"


def app_iri(iri_base: str, app_id: str) -> str:
    """APP: ``{iri_base}/applications/1.0/{app}``; RELAY_APP_ID may already be the full IRI."""
    if is_absolute_iri(app_id):
        return app_id
    return f"{iri_base}{_APPS}{segment(app_id)}"


def activity_iri(activity_id: str, activity_base_url: str | None) -> str:
    """An activity's IRI: an absolute IRI stays; a local id becomes ``{base}/{id}``."""
    if is_absolute_iri(activity_id):
        return _escape_unsafe(activity_id)
    if not activity_base_url:
        raise Rejection(
            "map",
            "activity-iri-unresolved",
            f"activity id {activity_id!r} is not an absolute IRI and "
            "RELAY_ACTIVITY_BASE_URL is not set",
        )
    # "/" stays: local ids often have a path structure ("math5/lesson3").
    path = activity_id.lstrip("/")
    if not _PLAIN_PATH.match(path):
        path = quote(path, safe=_SEGMENT_SAFE + "/")
    return f"{activity_base_url}/{path}"


def _escape_unsafe(iri: str) -> str:
    """%-encode the few ASCII characters an IRI may not contain (RFC 3987: <>"{}|\\^`)."""
    return iri.translate(_UNSAFE) if _HAS_UNSAFE.search(iri) else iri


def parse_course_id(iri_or_id: str) -> str:
    """The course sourcedId in a CRS IRI (any host), or the value itself when it is a bare id.

    Raises ValueError for an empty value or an absolute IRI that is not a rostering course IRI:
    it cannot be turned into the CRS form TimeBack requires.
    """
    value = iri_or_id.strip()
    if not value:
        raise ValueError("empty course id")
    if not is_absolute_iri(value):
        return value
    head, sep, tail = value.partition(_COURSES)
    raw = tail.rstrip("/")
    if not sep or not head or not raw or "/" in raw:
        raise ValueError(f"{iri_or_id!r} is not a course IRI (…{_COURSES}{{sourcedId}})")
    return unquote(raw)


def session_iri(namespace: uuid.UUID, session_id: str) -> str:
    """A Session id: an absolute IRI stays, a UUID becomes its URN, anything else a UUIDv5."""
    if _CANONICAL_UUID.match(session_id):  # the usual form: its URN without a UUID object
        return "urn:uuid:" + session_id.lower()
    if is_absolute_iri(session_id):
        return _escape_unsafe(session_id)
    try:
        return uuid.UUID(session_id).urn
    except ValueError:
        return uuid.uuid5(namespace, "session" + _UUID_NS_SEPARATOR + session_id).urn
