"""The records and the event of the vendor guide's integration flow (docs/partner-api.md#rostering).

Pure builders, used by ``relay smoke`` (against the sandbox or production) and by tests. Test
users always carry ``metadata.isTestUser: true`` and live in org ``partner-sandbox``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from relay.caliper.events import (
    assessment_item_event,
    event_extensions,
    grade_event,
    session_event,
    view_event,
)
from relay.caliper.ids import app_iri, course_iri, format_time, user_iri
from relay.config import PRODUCTION_BASE_URL
from relay.sandbox.config import DEFAULT_ORG

Json = dict[str, Any]


def student(sourced_id: str, given: str = "Smoke", family: str = "Test") -> Json:
    return {
        "sourcedId": sourced_id,
        "status": "active",
        "enabledUser": True,
        "givenName": given,
        "familyName": family,
        "email": f"{sourced_id}@example.invalid",
        "roles": [{"role": "student", "roleType": "primary", "org": {"sourcedId": DEFAULT_ORG}}],
        "metadata": {"isTestUser": True},
    }


def course(
    sourced_id: str, title: str = "Smoke Math", subjects: tuple[str, ...] = ("Math",)
) -> Json:
    return {
        "sourcedId": sourced_id,
        "status": "active",
        "title": title,
        "courseCode": sourced_id[:16],
        "grades": ["05"],
        "subjects": list(subjects),
        "org": {"sourcedId": DEFAULT_ORG},
        "metadata": {"isTestCourse": True},
    }


def klass(sourced_id: str, course_id: str, title: str = "Smoke class") -> Json:
    return {
        "sourcedId": sourced_id,
        "status": "active",
        "title": title,
        "classType": "scheduled",
        "course": {"sourcedId": course_id},
        "org": {"sourcedId": DEFAULT_ORG},
    }


def enrollment(
    sourced_id: str, user_id: str, class_id: str, begin: str | None = None, end: str | None = None
) -> Json:
    record: Json = {
        "sourcedId": sourced_id,
        "status": "active",
        "role": "student",
        "primary": True,
        "user": {"sourcedId": user_id},
        "class": {"sourcedId": class_id},
    }
    if begin is not None:
        record["beginDate"] = begin
    if end is not None:
        record["endDate"] = end
    return record


def xp_event(
    *,
    app_id: str,
    student_id: str,
    course_id: str,
    xp: float = 10.0,
    subject: str = "Math",
    iri_base: str = PRODUCTION_BASE_URL,
    activity_base: str = "https://smoke.example.invalid",
    attempt: str | None = None,
    event_id: str | None = None,
    event_time: datetime | str | None = None,
) -> Json:
    """An XP GradeEvent (docs/partner-api.md#what-the-relay-sends) built by the relay's builder."""
    attempt = attempt or uuid.uuid4().hex
    when = (
        event_time if isinstance(event_time, str) else format_time(event_time or datetime.now(UTC))
    )
    attempt_iri = f"{activity_base}/attempts/{attempt}"
    return grade_event(
        id=event_id or uuid.uuid4().urn,
        event_time=when,
        app=app_iri(iri_base, app_id),
        student=user_iri(iri_base, student_id),
        attempt_id=attempt_iri,
        count=1,
        assignable_id=f"{activity_base}/lessons/smoke",
        assignable_type="DigitalResource",
        activity_name="Smoke lesson",
        score_id=f"{attempt_iri}/score",
        score_given=xp,
        max_score=xp,
        score_type="XP",
        extensions=event_extensions(subject, course_iri(iri_base, course_id)),
    )


def item_event(
    *,
    app_id: str,
    student_id: str,
    course_id: str,
    action: str = "Completed",
    item: str = "https://app.example.invalid/q/1",
    event_time: str = "2026-03-10T12:00:00.000Z",
    iri_base: str = PRODUCTION_BASE_URL,
) -> Json:
    """An AssessmentItemEvent: Completed (a Response) or Started/Skipped (an Attempt)."""
    event = assessment_item_event(
        id=uuid.uuid4().urn,
        event_time=event_time,
        app=app_iri(iri_base, app_id),
        student=user_iri(iri_base, student_id),
        item_id=item,
        item_name=None,
        assessment_id=None,
        assessment_name=None,
        attempt_id=f"{item}/att/1",
        count=1,
        started_at=None,
        ended_at=None,
        response_id=f"{item}/response/1",
        response=None,
        extensions=event_extensions("Math", course_iri(iri_base, course_id)),
    )
    if action != "Completed":
        event["action"] = action
        event["generated"] = event["generated"]["attempt"]
    return event


def login_event(
    *,
    app_id: str,
    student_id: str,
    event_time: str = "2026-03-10T12:00:00.000Z",
    iri_base: str = PRODUCTION_BASE_URL,
) -> Json:
    """A SessionEvent LoggedIn (processed synchronously: 200)."""
    return session_event(
        id=uuid.uuid4().urn,
        event_time=event_time,
        action="LoggedIn",
        app=app_iri(iri_base, app_id),
        student=user_iri(iri_base, student_id),
        session_id=uuid.uuid4().urn,
    )


def viewed_event(
    *,
    app_id: str,
    student_id: str,
    resource: str = "https://app.example.invalid/lessons/1",
    event_time: str = "2026-03-10T12:00:00.000Z",
    iri_base: str = PRODUCTION_BASE_URL,
) -> Json:
    """A ViewEvent Viewed without subject or course."""
    return view_event(
        id=uuid.uuid4().urn,
        event_time=event_time,
        app=app_iri(iri_base, app_id),
        student=user_iri(iri_base, student_id),
        resource_id=resource,
        resource_name=None,
        extensions=None,
    )
