"""Activity + course context -> Caliper events (issue 4's table), then checked before sending.

``map_activity`` is pure: one record becomes one or more events, each with a deterministic id
(record type, producer event id, index), its body and its orjson bytes. ``Mapper`` is the stage
the pipeline runs: resolve course and subject, map, and run the rule checker on every event; an
issue means the mapping is wrong, and the record is rejected as ``map/invalid-caliper``.

Entity ids derived from a record (all under the activity's IRI, so they stay unique per app):

- XP Attempt: ``{activity}/attempts/{event_id}`` (one per earning); its Score ``…/score``
- assessment Attempt: ``{assessment}/attempts/{attempt}``
- item Attempt: ``{item}/attempts/{attempt}``; its Response ``…/responses/{event_id}``; the
  QUESTION_RESULT Score ``…/scores/{event_id}``
- Session: the producer's id if it is an IRI, its URN if it is a UUID, else a UUIDv5 of it
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

import orjson

from relay.caliper import events as ev
from relay.caliper.ids import EventIds, Iris, format_time, segment, session_iri
from relay.caliper.validate import TimeBackRules, check
from relay.contract.activity import (
    Activity,
    AssessmentAction,
    AssessmentProgress,
    QuestionAnswered,
    ResourceViewed,
    SessionAction,
    SessionChanged,
    XpEarned,
    record_name,
    require_every_type,
)
from relay.courses import CourseContext, CourseResolver
from relay.errors import Rejection

__all__ = [
    "CaliperEvent",
    "CourseContext",
    "Mapper",
    "MappingContext",
    "map_activity",
]


@dataclass(frozen=True, slots=True)
class MappingContext:
    """What mapping needs from the configuration: the IRI bases, the app and the id namespace."""

    iri_base: str
    app_iri: str
    activity_base_url: str | None
    id_namespace: uuid.UUID
    event_ids: EventIds = field(init=False, repr=False, compare=False)
    iris: Iris = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # frozen: set once
        object.__setattr__(self, "event_ids", EventIds(self.id_namespace))
        object.__setattr__(self, "iris", Iris(self.iri_base, self.activity_base_url))


class CaliperEvent(NamedTuple):
    """One event ready to send: ``payload`` is ``body`` serialized once, with orjson.

    Immutable as a NamedTuple: built for every event, it costs half a frozen dataclass (which
    sets each field through object.__setattr__)."""

    id: str
    type: str
    body: dict[str, Any]
    payload: bytes

    @classmethod
    def of(cls, body: dict[str, Any]) -> CaliperEvent:
        return cls(body["id"], body["type"], body, orjson.dumps(body))


# --- the mapping table ------------------------------------------------------------------------

ASSESSMENT_ACTIONS: Final[dict[AssessmentAction, ev.AssessmentActionTerm]] = {
    AssessmentAction.STARTED: "Started",
    AssessmentAction.PAUSED: "Paused",
    AssessmentAction.RESUMED: "Resumed",
    AssessmentAction.RESTARTED: "Restarted",
    AssessmentAction.SUBMITTED: "Submitted",
}
SESSION_ACTIONS: Final[dict[SessionAction, ev.SessionActionTerm]] = {
    SessionAction.LOGGED_IN: "LoggedIn",
    SessionAction.LOGGED_OUT: "LoggedOut",
    SessionAction.TIMED_OUT: "TimedOut",
}


def map_activity(
    activity: Activity, course: CourseContext, ctx: MappingContext
) -> list[CaliperEvent]:
    """The Caliper events of one activity record, in a fixed order (the index of each id)."""
    mapper = _MAPPERS.get(type(activity))
    if mapper is None:
        raise Rejection("map", "unsupported-record", f"no mapping for {record_name(activity)}")
    return [CaliperEvent.of(body) for body in mapper(activity, course, ctx)]


def _id(activity: Activity, ctx: MappingContext, index: int) -> str:
    """The id of the record's ``index``-th event (0, 1, … in the order the events are made)."""
    return ctx.event_ids(record_name(activity), activity.event_id, index)


def _extensions(course: CourseContext, ctx: MappingContext) -> ev.Json | None:
    course_ref = ctx.iris.course(course.course_id) if course.course_id else None
    return ev.event_extensions(course.subject, course_ref)


def _time(value: Any) -> str | None:
    return format_time(value) if value is not None else None


def _map_xp(a: XpEarned, course: CourseContext, ctx: MappingContext) -> list[ev.Json]:
    activity = ctx.iris.activity(a.activity.id)
    attempt = f"{activity}/attempts/{segment(a.event_id)}"
    event = ev.grade_event(
        id=_id(a, ctx, 0),
        event_time=format_time(a.occurred_at),
        app=ctx.app_iri,
        student=ctx.iris.user(a.student_id),
        attempt_id=attempt,
        count=a.attempt,
        assignable_id=activity,
        assignable_type="DigitalResource",
        activity_name=a.activity.name,
        score_id=f"{attempt}/score",
        score_given=a.xp,
        max_score=a.xp,
        score_type="XP",
        extensions=_extensions(course, ctx),
    )
    return [event]


def _map_assessment(
    a: AssessmentProgress, course: CourseContext, ctx: MappingContext
) -> list[ev.Json]:
    assessment = ctx.iris.activity(a.assessment.id)
    occurred = format_time(a.occurred_at)
    action = ASSESSMENT_ACTIONS[a.action]
    # Started/Restarted begin the attempt now unless the record says when; Submitted ends it.
    started = _time(a.started_at) or (occurred if action in ("Started", "Restarted") else None)
    ended = _time(a.ended_at) or (occurred if action == "Submitted" else None)
    totals: ev.Json = {}
    if a.total_questions is not None:
        totals["totalQuestions"] = a.total_questions
    if a.correct_questions is not None:
        totals["correctQuestions"] = a.correct_questions
    event = ev.assessment_event(
        id=_id(a, ctx, 0),
        event_time=occurred,
        action=action,
        app=ctx.app_iri,
        student=ctx.iris.user(a.student_id),
        assessment_id=assessment,
        assessment_name=a.assessment.name,
        attempt_id=f"{assessment}/attempts/{a.attempt}",
        count=a.attempt,
        started_at=started,
        ended_at=ended,
        attempt_extensions=totals,
        extensions=_extensions(course, ctx),
    )
    return [event]


def _map_question(a: QuestionAnswered, course: CourseContext, ctx: MappingContext) -> list[ev.Json]:
    item = ctx.iris.activity(a.item.id)
    assessment = a.assessment
    assessment_id = ctx.iris.activity(assessment.id) if assessment else None
    attempt = f"{item}/attempts/{a.attempt}"
    event_segment = segment(a.event_id)
    occurred = format_time(a.occurred_at)
    student = ctx.iris.user(a.student_id)
    extensions = _extensions(course, ctx)
    events = [
        ev.assessment_item_event(
            id=_id(a, ctx, 0),
            event_time=occurred,
            app=ctx.app_iri,
            student=student,
            item_id=item,
            item_name=a.item.name,
            assessment_id=assessment_id,
            assessment_name=assessment.name if assessment else None,
            attempt_id=attempt,
            count=a.attempt,
            started_at=_time(a.started_at),
            ended_at=_time(a.ended_at) or occurred,  # Completed: the item ended by now
            response_id=f"{attempt}/responses/{event_segment}",
            response=a.response,
            extensions=extensions,
        )
    ]
    if a.correct is not None:
        events.append(
            ev.grade_event(
                id=_id(a, ctx, 1),
                event_time=occurred,
                app=ctx.app_iri,
                student=student,
                attempt_id=attempt,
                count=a.attempt,
                assignable_id=item,
                assignable_type="AssessmentItem",
                activity_name=a.item.name,
                score_id=f"{attempt}/scores/{event_segment}",
                score_given=1.0 if a.correct else 0.0,
                max_score=1.0,
                score_type="QUESTION_RESULT",
                extensions=extensions,
            )
        )
    return events


def _map_view(a: ResourceViewed, course: CourseContext, ctx: MappingContext) -> list[ev.Json]:
    event = ev.view_event(
        id=_id(a, ctx, 0),
        event_time=format_time(a.occurred_at),
        app=ctx.app_iri,
        student=ctx.iris.user(a.student_id),
        resource_id=ctx.iris.activity(a.resource.id),
        resource_name=a.resource.name,
        extensions=_extensions(course, ctx),
    )
    return [event]


def _map_session(a: SessionChanged, course: CourseContext, ctx: MappingContext) -> list[ev.Json]:
    del course  # sessions never carry subject or course (docs/partner-api.md#what-the-relay-sends)
    event = ev.session_event(
        id=_id(a, ctx, 0),
        event_time=format_time(a.occurred_at),
        action=SESSION_ACTIONS[a.action],
        app=ctx.app_iri,
        student=ctx.iris.user(a.student_id),
        session_id=session_iri(ctx.id_namespace, a.session_id),
    )
    return [event]


_Map = Callable[[Any, CourseContext, MappingContext], list[ev.Json]]
_MAPPERS: Final[dict[type, _Map]] = {
    XpEarned: _map_xp,
    AssessmentProgress: _map_assessment,
    QuestionAnswered: _map_question,
    ResourceViewed: _map_view,
    SessionChanged: _map_session,
}
require_every_type("relay.mapping: _MAPPERS", _MAPPERS)


# --- the stage --------------------------------------------------------------------------------


class Mapper:
    """The enrich + map stage, the one entry for the pipeline, the tools, the bench and the tests.

    ``map`` is the whole stage. The pipeline runs its two halves apart, ``resolve`` (course and
    subject: may ask the rostering API, so it is wrapped in the pipeline's retry) then
    ``map_resolved`` (pure: map and check), so a rostering outage is waited out while mapping
    never is.
    """

    def __init__(self, ctx: MappingContext, resolver: CourseResolver, rules: TimeBackRules) -> None:
        self.ctx = ctx
        self.resolver = resolver
        self.rules = rules

    async def map(self, activity: Activity) -> list[CaliperEvent]:
        return self.map_resolved(activity, await self.resolve(activity))

    async def resolve(self, activity: Activity) -> CourseContext:
        """Course and subject of the activity (``relay.courses``); a Rejection when they do
        not resolve; the rostering client's own errors when it cannot answer."""
        return await self.resolver.resolve(activity)

    def map_resolved(self, activity: Activity, course: CourseContext) -> list[CaliperEvent]:
        """Map with a known course context and check every event (Rejection on any issue)."""
        events = map_activity(activity, course, self.ctx)
        self._check(events)
        return events

    def _check(self, events: list[CaliperEvent]) -> None:
        """The rule checker on every event: an issue means the mapping is wrong (Rejection)."""
        for event in events:
            issues = check(event.body, self.rules)
            if issues:
                listed = "; ".join(f"{i.path}: {i.message}" for i in issues)
                raise Rejection("map", "invalid-caliper", f"{event.type} {event.id}: {listed}")
