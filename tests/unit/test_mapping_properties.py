"""Properties of the mapping: any activity the contract accepts maps to events the checker passes.

The strategies generate activities within the contract's checks (relay.contract.build): UUID
event ids, ids without whitespace or control characters, any text as names, finite xp, attempts
>= 1, started_at <= ended_at, any timezone.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from relay.caliper.ids import app_iri
from relay.caliper.validate import TimeBackRules, check
from relay.config import DEFAULT_SUBJECTS
from relay.contract.activity import (
    Activity,
    ActivityRef,
    AssessmentAction,
    AssessmentProgress,
    QuestionAnswered,
    ResourceViewed,
    SessionAction,
    SessionChanged,
    XpEarned,
)
from relay.courses import CourseContext
from relay.mapping import MappingContext, map_activity

BASE = "https://api.alpha-1edtech.ai"
RULES = TimeBackRules(BASE, DEFAULT_SUBJECTS)

# --- strategies -------------------------------------------------------------------------------

# What the contract accepts as an id: printable, no whitespace (str.isprintable() is False for
# control, format, separator and surrogate characters).
ident = st.text(
    st.characters(exclude_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=40,
).filter(str.isprintable)
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)
zones = st.sampled_from(
    [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30))]
)
times = st.datetimes(datetime(1971, 1, 1), datetime(2100, 1, 1), timezones=zones)
iri_activity_id = st.builds(
    lambda scheme, path: f"{scheme}{path}",
    st.sampled_from(["https://app.example.com/", "http://x.org/a/", "urn:app:", "tag:x.org,2026:"]),
    ident,
)
activity_ref = st.builds(ActivityRef, st.one_of(ident, iri_activity_id), text)
event_ids = st.uuids().map(str)
attempts = st.integers(1, 2**31 - 1)
counts = st.none() | st.integers(0, 2**31 - 1)


@st.composite
def interval(draw: st.DrawFn) -> tuple[datetime | None, datetime | None]:
    start, end = draw(st.none() | times), draw(st.none() | times)
    if start is not None and end is not None and start > end:
        start, end = end, start
    return start, end


@st.composite
def assessment_progress(draw: st.DrawFn) -> AssessmentProgress:
    started, ended = draw(interval())
    return AssessmentProgress(
        draw(event_ids), draw(times), draw(ident), draw(activity_ref),
        draw(st.sampled_from(list(AssessmentAction))), draw(attempts), started, ended,
        draw(counts), draw(counts),
    )  # fmt: skip


@st.composite
def question_answered(draw: st.DrawFn) -> QuestionAnswered:
    started, ended = draw(interval())
    return QuestionAnswered(
        draw(event_ids), draw(times), draw(ident), draw(activity_ref),
        draw(st.none() | activity_ref), draw(st.none() | text), draw(st.none() | st.booleans()),
        started, ended, draw(attempts),
    )  # fmt: skip


common: dict[str, Any] = {"event_id": event_ids, "occurred_at": times, "student_id": ident}
activities: st.SearchStrategy[Activity] = st.one_of(
    st.builds(
        XpEarned,
        **common,
        activity=activity_ref,
        xp=st.floats(allow_nan=False, allow_infinity=False),
        attempt=attempts,
    ),
    assessment_progress(),
    question_answered(),
    st.builds(ResourceViewed, **common, resource=activity_ref),
    st.builds(
        SessionChanged,
        **common,
        session_id=st.one_of(ident, iri_activity_id, st.uuids().map(str)),
        action=st.sampled_from(list(SessionAction)),
    ),
)
# As the resolver hands them over: a course sourcedId and a subject of the enum.
courses = st.builds(CourseContext, ident, st.sampled_from(DEFAULT_SUBJECTS))
contexts = st.builds(
    MappingContext,
    iri_base=st.sampled_from([BASE, "http://127.0.0.1:8080"]),
    app_iri=st.just(""),  # filled in from iri_base below
    activity_base_url=st.sampled_from(["https://app.example.com", "https://app.example.com/a/"]),
    id_namespace=st.uuids(),
)


def _with_app(ctx: MappingContext, app_id: str) -> MappingContext:
    return MappingContext(
        ctx.iri_base, app_iri(ctx.iri_base, app_id), ctx.activity_base_url.rstrip("/") if
        ctx.activity_base_url else None, ctx.id_namespace,
    )  # fmt: skip


# --- properties -------------------------------------------------------------------------------


@settings(max_examples=400, deadline=None)
@given(activities, courses, contexts, ident)
def test_any_valid_activity_maps_to_events_without_issues(
    activity: Activity, course: CourseContext, ctx: MappingContext, app_id: str
) -> None:
    ctx = _with_app(ctx, app_id)
    rules = TimeBackRules(ctx.iri_base, DEFAULT_SUBJECTS)
    events = map_activity(activity, course, ctx)
    for event in events:
        assert check(event.body, rules) == [], event.body
        # the bytes are the body, and they read back to the same value (floats keep a fraction)
        assert event.payload == orjson.dumps(event.body)
        assert orjson.loads(event.payload) == event.body
        assert (event.id, event.type) == (event.body["id"], event.body["type"])


@given(activities, courses)
def test_mapping_is_deterministic_and_ids_are_distinct(
    activity: Activity, course: CourseContext
) -> None:
    ctx = _with_app(MappingContext(BASE, "", "https://app.example.com", uuid.UUID(int=1)), "app")
    first = map_activity(activity, course, ctx)
    again = map_activity(activity, course, ctx)
    assert [e.payload for e in first] == [e.payload for e in again]
    assert len({e.id for e in first}) == len(first)


@given(activities, courses)
def test_one_event_per_record_two_for_a_graded_question(
    activity: Activity, course: CourseContext
) -> None:
    ctx = _with_app(MappingContext(BASE, "", "https://app.example.com", uuid.UUID(int=1)), "app")
    events = map_activity(activity, course, ctx)
    graded = isinstance(activity, QuestionAnswered) and activity.correct is not None
    assert [e.type for e in events][1:] == (["GradeEvent"] if graded else [])
    expected_first = {
        XpEarned: "GradeEvent",
        AssessmentProgress: "AssessmentEvent",
        QuestionAnswered: "AssessmentItemEvent",
        ResourceViewed: "ViewEvent",
        SessionChanged: "SessionEvent",
    }[type(activity)]
    assert events[0].type == expected_first
    # sessions never carry extensions; the others carry exactly subject and course
    extensions = events[0].body.get("extensions")
    if isinstance(activity, SessionChanged):
        assert extensions is None
    else:
        assert extensions is not None and set(extensions) == {"subject", "course"}
