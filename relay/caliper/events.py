"""Caliper v1p2 event builders: one pure function per event type, JSON-ready dicts out.

The builders know Caliper and TimeBack shapes (docs/partner-api.md#events), not activity records:
callers pass ready IRIs and formatted times (``relay.caliper.ids``). Rules they keep:

- keys in one fixed order (``@context``, id, type, profile, action, actor, object, generated,
  eventTime, edApp, session, extensions), so serialized bytes are stable;
- ``None`` and empty values are left out, never emitted as ``null`` (docs/caliper-rules.md);
- scores are floats (``12.0``), ``count`` an int (docs/caliper-rules.md#formats);
- ``scoreType`` lives in ``generated.extensions``; ``activityName`` in ``object.extensions``.
"""

from __future__ import annotations

from typing import Any, Final, Literal

CONTEXT: Final = "http://purl.imsglobal.org/ctx/caliper/v1p2"

Json = dict[str, Any]
ScoreType = Literal["XP", "QUESTION_RESULT"]
AssessmentActionTerm = Literal["Started", "Paused", "Resumed", "Restarted", "Reset", "Submitted"]
SessionActionTerm = Literal["LoggedIn", "LoggedOut", "TimedOut"]


def event_extensions(subject: str | None, course_iri: str | None) -> Json | None:
    """Event-level ``extensions``: exactly ``subject`` and ``course: {id}``, whichever are known."""
    ext: Json = {}
    if subject is not None:
        ext["subject"] = subject
    if course_iri is not None:
        ext["course"] = {"id": course_iri}
    return ext or None


def _ref(iri: str, type_: str, name: str | None = None) -> Json:
    entity: Json = {"id": iri, "type": type_}
    if name:
        entity["name"] = name
    return entity


def _event(
    *,
    id: str,
    type_: str,
    profile: str,
    action: str,
    actor: Json,
    obj: Json,
    event_time: str,
    app: str,
    generated: Json | None = None,
    session: Json | None = None,
    extensions: Json | None = None,
) -> Json:
    event: Json = {
        "@context": CONTEXT,
        "id": id,
        "type": type_,
        "profile": profile,
        "action": action,
        "actor": actor,
        "object": obj,
    }
    if generated is not None:
        event["generated"] = generated
    event["eventTime"] = event_time
    event["edApp"] = {"id": app, "type": "SoftwareApplication"}
    if session is not None:
        event["session"] = session
    if extensions:
        event["extensions"] = extensions
    return event


def _put_times(entity: Json, started_at: str | None, ended_at: str | None) -> None:
    if started_at is not None:
        entity["startedAtTime"] = started_at
    if ended_at is not None:
        entity["endedAtTime"] = ended_at


def grade_event(
    *,
    id: str,
    event_time: str,
    app: str,
    student: str,
    attempt_id: str,
    count: int,
    assignable_id: str,
    assignable_type: str,
    activity_name: str | None,
    score_id: str,
    score_given: float,
    max_score: float,
    score_type: ScoreType,
    extensions: Json | None,
) -> Json:
    """GradeEvent ``Graded``: the app (autograder) grades the student's Attempt with a Score."""
    attempt: Json = {
        "id": attempt_id,
        "type": "Attempt",
        "count": int(count),
        "assignee": {"id": student, "type": "Person"},
        "assignable": {"id": assignable_id, "type": assignable_type},
    }
    if activity_name:
        attempt["extensions"] = {"activityName": activity_name}
    score: Json = {
        "id": score_id,
        "type": "Score",
        "scoreGiven": float(score_given),
        "maxScore": float(max_score),
        "extensions": {"scoreType": score_type},
    }
    return _event(
        id=id,
        type_="GradeEvent",
        profile="GradingProfile",
        action="Graded",
        actor={"id": app, "type": "SoftwareApplication"},
        obj=attempt,
        generated=score,
        event_time=event_time,
        app=app,
        extensions=extensions,
    )


def assessment_event(
    *,
    id: str,
    event_time: str,
    action: AssessmentActionTerm,
    app: str,
    student: str,
    assessment_id: str,
    assessment_name: str | None,
    attempt_id: str,
    count: int,
    started_at: str | None,
    ended_at: str | None,
    attempt_extensions: Json | None,
    extensions: Json | None,
) -> Json:
    """AssessmentEvent: the student acts on an Assessment; generates the assessment Attempt."""
    attempt: Json = {
        "id": attempt_id,
        "type": "Attempt",
        "count": int(count),
        "assignee": student,
        "assignable": assessment_id,
    }
    _put_times(attempt, started_at, ended_at)
    if attempt_extensions:
        attempt["extensions"] = attempt_extensions
    return _event(
        id=id,
        type_="AssessmentEvent",
        profile="AssessmentProfile",
        action=action,
        actor={"id": student, "type": "Person"},
        obj=_ref(assessment_id, "Assessment", assessment_name),
        generated=attempt,
        event_time=event_time,
        app=app,
        extensions=extensions,
    )


def assessment_item_event(
    *,
    id: str,
    event_time: str,
    app: str,
    student: str,
    item_id: str,
    item_name: str | None,
    assessment_id: str | None,
    assessment_name: str | None,
    attempt_id: str,
    count: int,
    started_at: str | None,
    ended_at: str | None,
    response_id: str,
    response: str | None,
    extensions: Json | None,
) -> Json:
    """AssessmentItemEvent ``Completed``: generates a Response linked to the item Attempt."""
    item = _ref(item_id, "AssessmentItem", item_name)
    if assessment_id is not None:
        item["isPartOf"] = _ref(assessment_id, "Assessment", assessment_name)
    attempt: Json = {
        "id": attempt_id,
        "type": "Attempt",
        "count": int(count),
        "assignee": student,
        "assignable": item_id,
    }
    _put_times(attempt, started_at, ended_at)
    generated: Json = {"id": response_id, "type": "Response", "attempt": attempt}
    if response:
        # A generic Response has no value property; the answer text rides in its extensions.
        generated["extensions"] = {"response": response}
    return _event(
        id=id,
        type_="AssessmentItemEvent",
        profile="AssessmentProfile",
        action="Completed",
        actor={"id": student, "type": "Person"},
        obj=item,
        generated=generated,
        event_time=event_time,
        app=app,
        extensions=extensions,
    )


def view_event(
    *,
    id: str,
    event_time: str,
    app: str,
    student: str,
    resource_id: str,
    resource_name: str | None,
    extensions: Json | None,
) -> Json:
    """ViewEvent ``Viewed`` under the ReadingProfile: the student viewed a DigitalResource."""
    return _event(
        id=id,
        type_="ViewEvent",
        profile="ReadingProfile",
        action="Viewed",
        actor={"id": student, "type": "Person"},
        obj=_ref(resource_id, "DigitalResource", resource_name),
        event_time=event_time,
        app=app,
        extensions=extensions,
    )


def session_event(
    *,
    id: str,
    event_time: str,
    action: SessionActionTerm,
    app: str,
    student: str,
    session_id: str,
) -> Json:
    """SessionEvent: the student logs in/out of the app, or the app times the Session out.

    Never carries event extensions (none on sessions: docs/partner-api.md#what-the-relay-sends).
    """
    app_entity: Json = {"id": app, "type": "SoftwareApplication"}
    student_entity: Json = {"id": student, "type": "Person"}
    session: Json = {"id": session_id, "type": "Session", "user": student_entity}
    if action == "TimedOut":
        session["endedAtTime"] = event_time
        return _event(
            id=id,
            type_="SessionEvent",
            profile="SessionProfile",
            action=action,
            actor=app_entity,
            obj=session,
            event_time=event_time,
            app=app,
        )
    session["startedAtTime" if action == "LoggedIn" else "endedAtTime"] = event_time
    return _event(
        id=id,
        type_="SessionEvent",
        profile="SessionProfile",
        action=action,
        actor=student_entity,
        obj=dict(app_entity),
        event_time=event_time,
        app=app,
        session=session,
    )
