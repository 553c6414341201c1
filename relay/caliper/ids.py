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
from typing import Any, Final
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
    """``event_id`` under one namespace, for every event mapped: the SHA-1 state after the bytes
    hashed before the producer's event id (namespace, record type) is made once per record type
    and copied for each event."""

    __slots__ = ("_namespace", "_prefixes")

    def __init__(self, namespace: uuid.UUID) -> None:
        self._namespace: Final = namespace.bytes  # UUID.bytes builds them anew on every read
        self._prefixes: dict[str, Any] = {}  # record type -> its hash state: a handful

    def __call__(self, record_type: str, producer_event_id: str, index: int) -> str:
        prefix = self._prefixes.get(record_type)
        if prefix is None:
            prefix = sha1(self._namespace, usedforsecurity=False)
            prefix.update(f"{record_type}{_UUID_NS_SEPARATOR}".encode())
            self._prefixes[record_type] = prefix
        # copy() of the fed state: cheaper than hashing prefix + name afresh (no concatenation,
        # no keyword parsing), and the prefix's bytes are not hashed again
        digest = prefix.copy()
        digest.update(f"{producer_event_id}{_UUID_NS_SEPARATOR}{index}".encode())
        return _urn(digest.hexdigest())


# The RFC 4122 variant bits (10xx) over a hex digit: its two low bits kept.
_VARIANT: Final = {f"{n:x}": "89ab"[n & 3] for n in range(16)}


def _urn(sha1_hex: str) -> str:
    """The UUIDv5 URN of a SHA-1 digest (hex): its first 16 bytes with the version digit (5) and
    the variant bits set, written as text without building bytes or a UUID."""
    h = sha1_hex
    return f"urn:uuid:{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:32]}"


# Two and three zero-padded digits by table: indexing is cheaper than a format spec.
_2DIGITS: Final = tuple(f"{n:02d}" for n in range(100))
_3DIGITS: Final = tuple(f"{n:03d}" for n in range(1000))


def format_time(dt: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` in UTC. A naive datetime is taken as UTC, never local time."""
    u = dt if dt.tzinfo is None or dt.tzinfo is UTC else dt.astimezone(UTC)
    # This runs for every event: table lookups in one f-string without format specs are ~2.4x
    # %-formatting seven fields (isoformat() would write +00:00 and parses its keyword).
    year = u.year
    return (
        f"{year if year >= 1000 else f'{year:04d}'}-{_2DIGITS[u.month]}-{_2DIGITS[u.day]}"
        f"T{_2DIGITS[u.hour]}:{_2DIGITS[u.minute]}:{_2DIGITS[u.second]}"
        f".{_3DIGITS[u.microsecond // 1000]}Z"
    )


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


class Iris:
    """The user, course and activity IRIs of one mapping context, each made once per id.

    Students, courses and activities recur from record to record, and each IRI costs a regex or
    two; a dict lookup is a tenth of that. Every table starts afresh at ``MEMO_LIMIT`` ids, so
    a stream of distinct ids cannot grow it. Failures (a local activity id without
    RELAY_ACTIVITY_BASE_URL) are raised each time, never remembered.
    """

    __slots__ = ("_activities", "_activity_base_url", "_courses", "_iri_base", "_users")

    def __init__(self, iri_base: str, activity_base_url: str | None) -> None:
        self._iri_base: Final = iri_base
        self._activity_base_url: Final = activity_base_url
        self._users: dict[str, str] = {}
        self._courses: dict[str, str] = {}
        self._activities: dict[str, str] = {}

    def user(self, user_id: str) -> str:
        """``user_iri`` under this context's IRI base."""
        iri = self._users.get(user_id)
        if iri is None:
            iri = _memo(self._users, user_id, user_iri(self._iri_base, user_id))
        return iri

    def course(self, course_id: str) -> str:
        """``course_iri`` under this context's IRI base."""
        iri = self._courses.get(course_id)
        if iri is None:
            iri = _memo(self._courses, course_id, course_iri(self._iri_base, course_id))
        return iri

    def activity(self, activity_id: str) -> str:
        """``activity_iri`` under this context's activity base URL."""
        iri = self._activities.get(activity_id)
        if iri is None:
            made = activity_iri(activity_id, self._activity_base_url)
            iri = _memo(self._activities, activity_id, made)
        return iri


MEMO_LIMIT: Final = 8192  # ids remembered per table of Iris


def _memo(table: dict[str, str], key: str, iri: str) -> str:
    if len(table) >= MEMO_LIMIT:
        table.clear()
    table[key] = iri
    return iri


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
