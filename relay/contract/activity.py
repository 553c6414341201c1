"""Typed, immutable activity records: what a producer said happened, after decoding.

One frozen dataclass per Avro record type (namespace ``timeback.activity``). Times are aware UTC
datetimes. Construction from a decoded Avro dict and the semantic checks live in ``build``.

The ``Activity`` union is the one list of record types: ``RECORD_TYPES`` is derived from it, and
every per-type table elsewhere (builders, mappers, traffic) checks at import that it covers
exactly that list (``require_every_type``), so a forgotten entry stops the relay at start instead
of dead-lettering records. What enrichment needs of a type is said here, on its class:
``COURSE`` (whether course and subject are required, best effort, or never attached) and
``course_refs`` (the activity ids the course map matches). docs/record-types.md lists the steps.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Final, Literal, get_args

NAMESPACE = "timeback.activity"

# What enrichment attaches to a record type's events: course and subject are "required" (the
# record is rejected without them), "best-effort" (left out when they do not resolve) or "none".
CoursePolicy = Literal["required", "best-effort", "none"]


@dataclass(frozen=True, slots=True)
class ActivityRef:
    """The Avro ``Activity`` record: a lesson, resource, assessment or item of the app."""

    id: str  # an absolute IRI, or an id local to the app (resolved with RELAY_ACTIVITY_BASE_URL)
    name: str


class AssessmentAction(enum.StrEnum):
    STARTED = "STARTED"
    PAUSED = "PAUSED"
    RESUMED = "RESUMED"
    RESTARTED = "RESTARTED"
    SUBMITTED = "SUBMITTED"


class SessionAction(enum.StrEnum):
    LOGGED_IN = "LOGGED_IN"
    LOGGED_OUT = "LOGGED_OUT"
    TIMED_OUT = "TIMED_OUT"


@dataclass(frozen=True, slots=True)
class XpEarned:
    COURSE: ClassVar[CoursePolicy] = "required"

    event_id: str
    occurred_at: datetime
    student_id: str
    activity: ActivityRef
    xp: float
    attempt: int = 1
    course_id: str | None = None
    subject: str | None = None

    def course_refs(self) -> tuple[str, ...]:
        """The activity ids the course map matches, most specific course signal first."""
        return (self.activity.id,)


@dataclass(frozen=True, slots=True)
class AssessmentProgress:
    COURSE: ClassVar[CoursePolicy] = "required"

    event_id: str
    occurred_at: datetime
    student_id: str
    assessment: ActivityRef
    action: AssessmentAction
    attempt: int = 1
    started_at: datetime | None = None
    ended_at: datetime | None = None
    total_questions: int | None = None
    correct_questions: int | None = None
    course_id: str | None = None
    subject: str | None = None

    def course_refs(self) -> tuple[str, ...]:
        return (self.assessment.id,)


@dataclass(frozen=True, slots=True)
class QuestionAnswered:
    COURSE: ClassVar[CoursePolicy] = "required"

    event_id: str
    occurred_at: datetime
    student_id: str
    item: ActivityRef
    assessment: ActivityRef | None = None
    response: str | None = None
    correct: bool | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    attempt: int = 1
    course_id: str | None = None
    subject: str | None = None

    def course_refs(self) -> tuple[str, ...]:
        """The assessment before the item: a quiz names the course better than one question."""
        if self.assessment is not None:
            return (self.assessment.id, self.item.id)
        return (self.item.id,)


@dataclass(frozen=True, slots=True)
class ResourceViewed:
    COURSE: ClassVar[CoursePolicy] = "best-effort"

    event_id: str
    occurred_at: datetime
    student_id: str
    resource: ActivityRef
    course_id: str | None = None
    subject: str | None = None

    def course_refs(self) -> tuple[str, ...]:
        return (self.resource.id,)


@dataclass(frozen=True, slots=True)
class SessionChanged:
    COURSE: ClassVar[CoursePolicy] = "none"  # sessions never carry subject or course

    event_id: str
    occurred_at: datetime
    student_id: str
    session_id: str
    action: SessionAction

    def course_refs(self) -> tuple[str, ...]:
        return ()


# The record types, once: everything else is derived from this union or checked against it.
Activity = XpEarned | AssessmentProgress | QuestionAnswered | ResourceViewed | SessionChanged
ACTIVITY_TYPES: Final[tuple[type[Activity], ...]] = get_args(Activity)

# Full Avro name -> model class. The relay dispatches on the record's name, never on the topic.
RECORD_TYPES: Final[dict[str, type[Activity]]] = {
    f"{NAMESPACE}.{cls.__name__}": cls for cls in ACTIVITY_TYPES
}


_RECORD_NAMES: Final[dict[type, str]] = {cls: name for name, cls in RECORD_TYPES.items()}


def record_name(activity: Activity) -> str:
    """The full Avro record name of an activity, e.g. ``timeback.activity.XpEarned`` (looked
    up: the mapper asks it for every event id)."""
    kind = type(activity)
    return _RECORD_NAMES.get(kind) or f"{NAMESPACE}.{kind.__name__}"


def require_every_type(table: str, handled: Iterable[type | str]) -> None:
    """Fail (at import, where a per-type table is built) unless ``table`` has exactly one entry
    per record type of ``Activity`` (a class, or its short name): a forgotten entry would
    otherwise surface as dead letters."""
    given = {entry if isinstance(entry, str) else entry.__name__ for entry in handled}
    expected = {cls.__name__ for cls in ACTIVITY_TYPES}
    missing, unknown = sorted(expected - given), sorted(given - expected)
    if missing or unknown:
        raise TypeError(
            f"{table}: every record type of relay.contract.activity.Activity needs one entry; "
            f"missing {missing}, not a record type {unknown} (docs/record-types.md)"
        )
