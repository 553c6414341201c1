"""Typed, immutable activity records: what a producer said happened, after decoding.

One frozen dataclass per Avro record type (namespace ``timeback.activity``). Times are aware UTC
datetimes. Construction from a decoded Avro dict and the semantic checks live in ``build``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

NAMESPACE = "timeback.activity"


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
    event_id: str
    occurred_at: datetime
    student_id: str
    activity: ActivityRef
    xp: float
    attempt: int = 1
    course_id: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class AssessmentProgress:
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


@dataclass(frozen=True, slots=True)
class QuestionAnswered:
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


@dataclass(frozen=True, slots=True)
class ResourceViewed:
    event_id: str
    occurred_at: datetime
    student_id: str
    resource: ActivityRef
    course_id: str | None = None
    subject: str | None = None


@dataclass(frozen=True, slots=True)
class SessionChanged:
    event_id: str
    occurred_at: datetime
    student_id: str
    session_id: str
    action: SessionAction


Activity = XpEarned | AssessmentProgress | QuestionAnswered | ResourceViewed | SessionChanged

# Full Avro name -> model class. The relay dispatches on the record's name, never on the topic.
RECORD_TYPES: dict[str, type[Activity]] = {
    f"{NAMESPACE}.{cls.__name__}": cls
    for cls in (XpEarned, AssessmentProgress, QuestionAnswered, ResourceViewed, SessionChanged)
}


def record_name(activity: Activity) -> str:
    """The full Avro record name of an activity, e.g. ``timeback.activity.XpEarned``."""
    return f"{NAMESPACE}.{type(activity).__name__}"
