"""From a decoded Avro record (a dict) to a typed, checked Activity.

The input is the *plain* datum the decoder produces (see ``catalogue``): timestamps as epoch
milliseconds, ``event_id`` as a string. Aware datetimes are accepted too, so hand-built records
work. Every failed check raises ``Rejection("validate", "invalid-field", "<field>: <why>")``;
a string longer than ``Checks.max_field_bytes`` in UTF-8 raises ``validate/field-too-long``
naming the field and its size (never its value).

This runs once per record on the hot path, hence plain functions and ``type() is`` tests rather
than a generic validator.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, TypeGuard

from relay.contract.activity import (
    NAMESPACE,
    Activity,
    ActivityRef,
    AssessmentAction,
    AssessmentProgress,
    QuestionAnswered,
    ResourceViewed,
    SessionAction,
    SessionChanged,
    XpEarned,
    require_every_type,
)
from relay.errors import Rejection

if TYPE_CHECKING:
    from relay.config import Settings

Record = Mapping[str, Any]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# RFC 4122 textual form, any case; normalised to lower case so case variants are one event.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
# The longest string field accepted, in UTF-8 bytes: one field would otherwise travel whole into
# every Caliper event, retry and dead letter built from it. Above what valid records carry (the
# trials send names of 1-2 MiB), below the window's byte bound (RELAY_MAX_PENDING_BYTES).
DEFAULT_MAX_FIELD_BYTES: Final = 4 * 1024 * 1024
_SCALARS: Final = frozenset({int, float, bool, type(None), datetime})  # never a nested record
_ASSESSMENT_ACTIONS = {member.value: member for member in AssessmentAction}
_SESSION_ACTIONS = {member.value: member for member in SessionAction}


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Checks:
    """The tunable semantic checks (RELAY_ALLOW_NEGATIVE_XP, RELAY_MAX_CLOCK_SKEW,
    RELAY_MAX_FIELD_BYTES)."""

    allow_negative_xp: bool = False
    max_clock_skew: float = 300.0  # seconds occurred_at may lie in the future
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES  # UTF-8 bytes of any one string field
    now: Callable[[], datetime] = _utc_now  # injectable for tests; must return an aware datetime
    _skew: timedelta = field(init=False, repr=False, compare=False)
    _system_clock: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_clock_skew < 0 or not math.isfinite(self.max_clock_skew):
            raise ValueError(f"max_clock_skew: must be finite and >= 0, got {self.max_clock_skew}")
        if self.max_field_bytes < 1:
            raise ValueError(f"max_field_bytes: must be >= 1, got {self.max_field_bytes}")
        object.__setattr__(self, "_skew", timedelta(seconds=self.max_clock_skew))
        # datetime.now(UTC) reads the clock time.time() reads: with it, epoch milliseconds are
        # compared with time.time() (no datetime built for now, per record)
        object.__setattr__(self, "_system_clock", self.now is _utc_now)

    @classmethod
    def from_settings(cls, settings: Settings) -> Checks:
        return cls(
            allow_negative_xp=settings.allow_negative_xp,
            max_clock_skew=settings.max_clock_skew,
            max_field_bytes=settings.max_field_bytes,
        )

    def latest_allowed(self) -> datetime:
        """The latest acceptable ``occurred_at`` right now."""
        return self.now() + self._skew


def activity_from_record(
    full_name: str, record: Record, checks: Checks, *, strings_fit: bool = False
) -> Activity:
    """The typed Activity of a decoded record of type ``full_name``, after the semantic checks.

    ``strings_fit``: the caller knows no string of the record can be over the size cap (the
    decoder, when the whole encoded record is no longer), so the record is not walked for it.
    """
    builder = _BUILDERS.get(full_name)
    if builder is None:
        raise Rejection("decode", "unsupported-record", f"record type {full_name!r} is not handled")
    if type(record) is not dict and not isinstance(record, Mapping):
        raise invalid("record", f"expected a mapping, got {_kind(record)}")
    if not strings_fit:
        _check_sizes(record, checks.max_field_bytes)
    try:
        return builder(record, checks)
    except KeyError as exc:  # a hand-built record without a required field
        raise invalid(str(exc.args[0]), "missing") from None


def invalid(name: str, why: str) -> Rejection:
    """The rejection of one field: ``invalid-field`` with ``<field>: <why>`` as detail."""
    return Rejection("validate", "invalid-field", f"{name}: {why}")


def _check_sizes(record: Record, limit: int, prefix: str = "") -> None:
    """Refuse the first string (nested records included) over ``limit`` UTF-8 bytes."""
    # No string of limit // 4 characters or fewer can exceed it (UTF-8 takes at most 4 bytes a
    # character), so almost every field costs one len(); an ASCII string's length is its size.
    quick = limit // 4
    for name, value in record.items():
        kind = type(value)
        if kind is str:
            if len(value) > quick:
                size = len(value) if value.isascii() else _utf8_size(value)
                if size > limit:
                    raise too_long(f"{prefix}{name}", size, limit)
        elif kind is dict or (kind not in _SCALARS and isinstance(value, Mapping)):
            _check_sizes(value, limit, f"{prefix}{name}.")


def _utf8_size(value: str) -> int:
    # surrogatepass: a lone surrogate is refused by the text checks, not here
    return len(value.encode("utf-8", "surrogatepass"))


def too_long(name: str, size: int, limit: int) -> Rejection:
    """The rejection of an oversized string: its field and size, never its value."""
    why = f"{size} bytes of UTF-8, over the {limit}-byte cap (RELAY_MAX_FIELD_BYTES)"
    return Rejection("validate", "field-too-long", f"{name}: {why}")


# -- one builder per record type ----------------------------------------------------------------


def _xp_earned(r: Record, checks: Checks) -> XpEarned:
    return XpEarned(
        event_id=_event_id(r["event_id"]),
        occurred_at=_occurred_at(r["occurred_at"], checks),
        student_id=_ident("student_id", r["student_id"]),
        activity=_ref("activity", r["activity"]),
        xp=_xp(r["xp"], checks),
        attempt=_attempt(r.get("attempt", 1)),
        course_id=_opt_ident("course_id", r.get("course_id")),
        subject=_opt_subject(r.get("subject")),
    )


def _assessment_progress(r: Record, checks: Checks) -> AssessmentProgress:
    started_at, ended_at = _interval(r.get("started_at"), r.get("ended_at"))
    total, correct = _scores(r.get("total_questions"), r.get("correct_questions"))
    return AssessmentProgress(
        event_id=_event_id(r["event_id"]),
        occurred_at=_occurred_at(r["occurred_at"], checks),
        student_id=_ident("student_id", r["student_id"]),
        assessment=_ref("assessment", r["assessment"]),
        action=_enum("action", r["action"], _ASSESSMENT_ACTIONS),
        attempt=_attempt(r.get("attempt", 1)),
        started_at=started_at,
        ended_at=ended_at,
        total_questions=total,
        correct_questions=correct,
        course_id=_opt_ident("course_id", r.get("course_id")),
        subject=_opt_subject(r.get("subject")),
    )


def _question_answered(r: Record, checks: Checks) -> QuestionAnswered:
    started_at, ended_at = _interval(r.get("started_at"), r.get("ended_at"))
    assessment = r.get("assessment")
    correct = r.get("correct")
    if correct is not None and type(correct) is not bool:
        raise invalid("correct", f"expected a boolean, got {_kind(correct)}")
    return QuestionAnswered(
        event_id=_event_id(r["event_id"]),
        occurred_at=_occurred_at(r["occurred_at"], checks),
        student_id=_ident("student_id", r["student_id"]),
        item=_ref("item", r["item"]),
        assessment=None if assessment is None else _ref("assessment", assessment),
        response=_opt_text("response", r.get("response")),
        correct=correct,
        started_at=started_at,
        ended_at=ended_at,
        attempt=_attempt(r.get("attempt", 1)),
        course_id=_opt_ident("course_id", r.get("course_id")),
        subject=_opt_subject(r.get("subject")),
    )


def _resource_viewed(r: Record, checks: Checks) -> ResourceViewed:
    return ResourceViewed(
        event_id=_event_id(r["event_id"]),
        occurred_at=_occurred_at(r["occurred_at"], checks),
        student_id=_ident("student_id", r["student_id"]),
        resource=_ref("resource", r["resource"]),
        course_id=_opt_ident("course_id", r.get("course_id")),
        subject=_opt_subject(r.get("subject")),
    )


def _session_changed(r: Record, checks: Checks) -> SessionChanged:
    return SessionChanged(
        event_id=_event_id(r["event_id"]),
        occurred_at=_occurred_at(r["occurred_at"], checks),
        student_id=_ident("student_id", r["student_id"]),
        session_id=_ident("session_id", r["session_id"]),
        action=_enum("action", r["action"], _SESSION_ACTIONS),
    )


_Builder = Callable[[Record, Checks], Activity]
_BUILDER_OF: dict[type[Activity], _Builder] = {
    XpEarned: _xp_earned,
    AssessmentProgress: _assessment_progress,
    QuestionAnswered: _question_answered,
    ResourceViewed: _resource_viewed,
    SessionChanged: _session_changed,
}
require_every_type("relay.contract.build: _BUILDER_OF", _BUILDER_OF)
# By full Avro name, as records are dispatched.
_BUILDERS: dict[str, _Builder] = {
    f"{NAMESPACE}.{cls.__name__}": build for cls, build in _BUILDER_OF.items()
}

# -- field checks -------------------------------------------------------------------------------


_HEX_TO_0: Final = bytes.maketrans(b"0123456789abcdef", b"0" * 16)
_UUID_SHAPE: Final = b"00000000-0000-0000-0000-000000000000"


def _event_id(value: Any) -> str:
    if type(value) is str and value.isascii():
        # _UUID's verdict without the regex: its ASCII lower-cased shape (a UUID is nearly
        # always written in ASCII; the regex decides anything else)
        lowered = value.lower()
        if lowered.encode().translate(_HEX_TO_0) == _UUID_SHAPE:
            return lowered
    if type(value) is not str or _UUID.fullmatch(value) is None:
        shown = repr(value)[:60] if type(value) is str else _kind(value)
        raise invalid("event_id", f"must be a UUID (8-4-4-4-12 hex digits), got {shown}")
    return value.lower()


def _is_id(value: Any) -> TypeGuard[str]:
    """A non-empty string without whitespace or control characters."""
    # isprintable() is False for every whitespace but " ", control, format and surrogate chars.
    return type(value) is str and value != "" and " " not in value and value.isprintable()


def _ident(name: str, value: Any) -> str:
    if _is_id(value):
        return value
    raise _bad_id(name, value)


def _bad_id(name: str, value: Any) -> Rejection:
    if type(value) is not str:
        return invalid(name, f"expected a string, got {_kind(value)}")
    return invalid(name, _why_bad_id(value))


def _opt_ident(name: str, value: Any) -> str | None:
    return None if value is None else _ident(name, value)


def _is_text(value: Any) -> TypeGuard[str]:
    """Free text: any string that is valid Unicode (no lone surrogates)."""
    # isprintable() first: it is the cheap answer for almost every name.
    return type(value) is str and (value.isprintable() or _SURROGATE.search(value) is None)


def _text(name: str, value: Any) -> str:
    if _is_text(value):
        return value
    raise _bad_text(name, value)


def _bad_text(name: str, value: Any) -> Rejection:
    if type(value) is not str:
        return invalid(name, f"expected a string, got {_kind(value)}")
    bad = _SURROGATE.search(value)
    assert bad is not None
    return invalid(name, f"invalid character U+{ord(bad.group()):04X} at {bad.start()}")


def _opt_text(name: str, value: Any) -> str | None:
    return None if value is None else _text(name, value)


def _opt_subject(value: Any) -> str | None:
    if value is None:
        return None
    if not _text("subject", value).strip():
        raise invalid("subject", "must not be blank (omit it instead)")
    return value


def _ref(name: str, value: Any) -> ActivityRef:
    if type(value) is not dict and not isinstance(value, Mapping):
        raise invalid(name, f"expected an Activity {{id, name}}, got {_kind(value)}")
    ident, label = value.get("id"), value.get("name")
    # Field names are only formatted on failure: this runs for nearly every record.
    if not _is_id(ident):
        raise invalid(f"{name}.id", "missing") if ident is None else _bad_id(f"{name}.id", ident)
    if not _is_text(label):
        raise (
            invalid(f"{name}.name", "missing")
            if label is None
            else _bad_text(f"{name}.name", label)
        )
    return ActivityRef(ident, label)


def _xp(value: Any, checks: Checks) -> float:
    if type(value) is not float:
        if type(value) is not int:
            raise invalid("xp", f"expected a number, got {_kind(value)}")
        value = float(value)
    if not math.isfinite(value):
        raise invalid("xp", f"must be finite, got {value}")
    if value < 0 and not checks.allow_negative_xp:
        why = f"must be >= 0, got {value} (RELAY_ALLOW_NEGATIVE_XP=true allows corrections)"
        raise invalid("xp", why)
    return value


def _attempt(value: Any) -> int:
    if type(value) is not int:
        raise invalid("attempt", f"expected an integer, got {_kind(value)}")
    if value < 1:
        raise invalid("attempt", f"must be >= 1, got {value}")
    return value


def _count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if type(value) is not int:
        raise invalid(name, f"expected an integer, got {_kind(value)}")
    if value < 0:
        raise invalid(name, f"must be >= 0, got {value}")
    return value


def _scores(total: Any, correct: Any) -> tuple[int | None, int | None]:
    total_n, correct_n = _count("total_questions", total), _count("correct_questions", correct)
    if total_n is not None and correct_n is not None and correct_n > total_n:
        raise invalid("correct_questions", f"{correct_n} exceeds total_questions {total_n}")
    return total_n, correct_n


def _enum(name: str, value: Any, members: Mapping[str, Any]) -> Any:
    member = members.get(value) if isinstance(value, str) else None
    if member is None:
        raise invalid(name, f"{value!r} is not one of {', '.join(members)}")
    return member


# -- times --------------------------------------------------------------------------------------


def to_datetime(name: str, value: Any) -> datetime:
    """An aware UTC datetime from epoch milliseconds (the Avro datum) or an aware datetime."""
    if type(value) is int:
        try:
            return _EPOCH + timedelta(0, 0, 0, value)  # positional: milliseconds, and faster
        except OverflowError:
            raise invalid(name, f"{value} ms since the epoch is out of range") from None
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise invalid(name, "datetime without a timezone (give an aware datetime)")
        return value.astimezone(UTC)
    raise invalid(name, f"expected epoch milliseconds, got {_kind(value)}")


def _occurred_at(value: Any, checks: Checks) -> datetime:
    when = to_datetime("occurred_at", value)
    if (
        value / 1000 > time.time() + checks.max_clock_skew
        if checks._system_clock and type(value) is int
        else when > checks.latest_allowed()
    ):
        raise invalid(
            "occurred_at",
            f"{when.isoformat()} is more than {checks.max_clock_skew:g}s in the future "
            "(RELAY_MAX_CLOCK_SKEW)",
        )
    return when


def _interval(started: Any, ended: Any) -> tuple[datetime | None, datetime | None]:
    start = None if started is None else to_datetime("started_at", started)
    end = None if ended is None else to_datetime("ended_at", ended)
    if start is not None and end is not None and start > end:
        raise invalid("ended_at", f"{end.isoformat()} is before started_at {start.isoformat()}")
    return start, end


# -- messages -----------------------------------------------------------------------------------


def _why_bad_id(value: str) -> str:
    if not value:
        return "must not be empty"
    for index, char in enumerate(value):
        if char == " " or not char.isprintable():
            kind = "whitespace" if char.isspace() else "an invalid or control character"
            return f"must not contain {kind} (U+{ord(char):04X} at {index})"
    return "invalid"  # unreachable: the caller found a bad character


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__
